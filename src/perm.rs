//! File modes and owners as every command accepts them, parsed in one place so `provision`,
//! `install` and the rest agree on what is allowed.
//!
//! A mode is octal digits only (`0600`, `400`; no `0o`, no sign) and carries permission bits only:
//! at most `0777`. Set-id and sticky bits on a secret are never what anyone wants, and `7777`
//! would make a setuid, world-writable file. An owner or group is a name looked up in the
//! system's databases (through [`crate::accounts`]) or a number; `4294967295` is `(uid_t)-1`, which `chown` reads as "leave
//! unchanged", so it and anything larger is refused rather than silently ignored.

/// The largest id a file may be given (`(uid_t)-1` means "no change" to `chown`).
pub const MAX_ID: u64 = u32::MAX as u64 - 1;

/// Why a mode, owner or group value is not usable. The caller adds where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PermError {
    /// Not octal digits, or set-id / sticky bits.
    #[error(
        "{0:?} is not a permission mode: give octal digits between 0000 and 0777 (e.g. 0600, 0440)"
    )]
    Mode(String),
    /// A number outside `0..=4294967294`.
    #[error("{0} is out of range (ids are 0 to 4294967294)")]
    IdRange(String),
    /// No such user.
    #[error("no such user {0:?}")]
    NoUser(String),
    /// No such group.
    #[error("no such group {0:?}")]
    NoGroup(String),
    /// The user or group database could not be read.
    #[error("cannot look up {0:?}: {1}")]
    Lookup(String, nix::Error),
}

/// Parses an octal permission mode, at most `0777`.
pub fn parse_mode(s: &str) -> Result<u32, PermError> {
    let bad = || PermError::Mode(s.to_string());
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(bad());
    }
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(bad)
}

/// Checks a numeric id (from a manifest or a flag) is one a file can be given.
pub fn check_id(id: u64) -> Result<u32, PermError> {
    if id <= MAX_ID {
        Ok(id as u32)
    } else {
        Err(PermError::IdRange(id.to_string()))
    }
}

/// A numeric id: ASCII digits only (no sign, no blanks); `None` when `v` is not a number.
fn numeric(v: &str) -> Option<Result<u32, PermError>> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match v.parse::<u64>() {
        Ok(n) => check_id(n),
        Err(_) => Err(PermError::IdRange(v.to_string())),
    })
}

/// A user name or uid.
pub fn resolve_user(v: &str) -> Result<u32, PermError> {
    if let Some(n) = numeric(v) {
        return n;
    }
    match crate::accounts::user_id(v) {
        Ok(Some(uid)) => Ok(uid),
        Ok(None) => Err(PermError::NoUser(v.to_string())),
        Err(e) => Err(PermError::Lookup(v.to_string(), e)),
    }
}

/// A group name or gid.
pub fn resolve_group(v: &str) -> Result<u32, PermError> {
    if let Some(n) = numeric(v) {
        return n;
    }
    match crate::accounts::group_id(v) {
        Ok(Some(gid)) => Ok(gid),
        Ok(None) => Err(PermError::NoGroup(v.to_string())),
        Err(e) => Err(PermError::Lookup(v.to_string(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_permission_bits_only() {
        assert_eq!(parse_mode("0400"), Ok(0o400));
        assert_eq!(parse_mode("400"), Ok(0o400));
        assert_eq!(parse_mode("0777"), Ok(0o777));
        assert_eq!(parse_mode("000600"), Ok(0o600));
        for bad in [
            "7777", "4755", "1777", "01000", "0o400", "0800", "17777", "", "-400", "+400", " 400",
            "0x1ff", "0000000",
        ] {
            assert!(parse_mode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_in_range() {
        assert_eq!(resolve_user("0"), Ok(0));
        assert_eq!(resolve_group("4294967294"), Ok(4_294_967_294));
        assert!(matches!(
            resolve_user("4294967295"),
            Err(PermError::IdRange(_))
        ));
        assert!(matches!(
            resolve_group("99999999999999999999999"),
            Err(PermError::IdRange(_))
        ));
        assert!(matches!(resolve_user("+5"), Err(PermError::NoUser(_))));
        assert_eq!(resolve_user("root"), Ok(0));
        assert_eq!(check_id(u64::from(u32::MAX)).ok(), None);
    }
}
