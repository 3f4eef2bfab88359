//! User and group names to numeric ids, safely in both the dynamic and the static build.
//!
//! The dynamic build asks the C library (`getpwnam_r`/`getgrnam_r`), so every source in
//! `/etc/nsswitch.conf` (files, systemd, LDAP, …) is consulted. A statically linked glibc binary
//! cannot do that: glibc ≥ 2.34 has the `files` source built in, but for a name that `files` does
//! not know it `dlopen`s the next module (`libnss_systemd.so.2` on Debian and NixOS), which drags
//! a second, dynamic libc into the static process — measured here, the process dies with SIGSEGV
//! (`provision --owner no-such-user`, or `install` as root on a host without a `keys` group).
//! So the static build (`target_feature = "crt-static"`, see `scripts/build-static`) reads
//! `/etc/passwd` and `/etc/group` itself, like glibc's `files` source: users that exist only in
//! other sources (systemd `DynamicUser=`, LDAP) are "no such user" there; give numeric ids for them.

use nix::errno::Errno;

/// The uid of user `name`, `None` when there is no such user.
pub fn user_id(name: &str) -> Result<Option<u32>, Errno> {
    #[cfg(not(target_feature = "crt-static"))]
    {
        nix::unistd::User::from_name(name).map(|u| u.map(|u| u.uid.as_raw()))
    }
    #[cfg(target_feature = "crt-static")]
    {
        Ok(id_in(&read_db("/etc/passwd")?, name))
    }
}

/// The gid of group `name`, `None` when there is no such group.
pub fn group_id(name: &str) -> Result<Option<u32>, Errno> {
    #[cfg(not(target_feature = "crt-static"))]
    {
        nix::unistd::Group::from_name(name).map(|g| g.map(|g| g.gid.as_raw()))
    }
    #[cfg(target_feature = "crt-static")]
    {
        Ok(id_in(&read_db("/etc/group")?, name))
    }
}

/// A database file, its read error as the errno `getpwnam_r` would report.
#[cfg(target_feature = "crt-static")]
fn read_db(path: &str) -> Result<String, Errno> {
    std::fs::read_to_string(path).map_err(|e| e.raw_os_error().map_or(Errno::EIO, Errno::from_raw))
}

/// The id (third `:` field) of the first entry named `name` in a passwd- or group-format text,
/// as glibc's `files` source reads it: `#` comments, blank and malformed lines skipped.
#[cfg_attr(not(target_feature = "crt-static"), allow(dead_code))]
fn id_in(text: &str, name: &str) -> Option<u32> {
    if name.is_empty() {
        return None;
    }
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let (n, _, id) = (f.next()?, f.next()?, f.next()?);
            Some((n, id.parse::<u32>().ok()?))
        })
        .find(|(n, _)| *n == name)
        .map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
        # comment:x:5:5\n\
        \n\
        broken line\n\
        bad-id:x:notanumber:1::/:/bin/false\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        dup:x:1001:1001::/:/bin/false\n\
        dup:x:1002:1002::/:/bin/false\n";

    #[test]
    fn passwd_entries_resolve_by_exact_name() {
        assert_eq!(id_in(PASSWD, "root"), Some(0));
        assert_eq!(id_in(PASSWD, "nobody"), Some(65534));
        // The first entry wins, like glibc's files source.
        assert_eq!(id_in(PASSWD, "dup"), Some(1001));
        for missing in [
            "",
            "nobod",
            "Nobody",
            "x",
            "bad-id",
            "broken line",
            "# comment",
        ] {
            assert_eq!(id_in(PASSWD, missing), None, "{missing:?}");
        }
    }

    #[test]
    fn group_entries_resolve() {
        let group = "root:x:0:\nkeys:x:96:alice,bob\nnogroup:x:65534:\n";
        assert_eq!(id_in(group, "keys"), Some(96));
        assert_eq!(id_in(group, "nogroup"), Some(65534));
        assert_eq!(id_in(group, "alice"), None);
    }

    #[test]
    fn this_system_resolves_root_and_not_a_made_up_name() {
        assert_eq!(user_id("root").unwrap(), Some(0));
        assert_eq!(group_id("root").unwrap(), Some(0));
        assert_eq!(user_id("tskeyctl-no-such-user-x9").unwrap(), None);
        assert_eq!(group_id("tskeyctl-no-such-group-x9").unwrap(), None);
    }
}
