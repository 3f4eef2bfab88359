//! Manifest paths stay inside their root and never share a target.
//!
//! Nothing is normalised: a path with an empty, `.` or `..` component is refused as written
//! (`/run/secrets/../../x` would otherwise escape `--root`), and after `--root` is applied the
//! result must still lie below it. Each secret lands at `<symlinkPath>/<name>` and, with `path`,
//! also at a symlink there; two secrets whose targets are equal or nested (a `path` equal to
//! another secret's default path, or below it, or below the generations' mount point) would make
//! one silently serve the other's value, so they are refused.

use std::path::Path;

/// An absolute manifest path written plainly: `/` first, no empty, `.` or `..` component, no
/// trailing `/`, no control characters.
pub fn check_abs(field: &str, p: &str) -> Result<(), String> {
    if !p.starts_with('/') || p.len() < 2 || p.ends_with('/') {
        return Err(format!("{field} {p:?} must be an absolute file path"));
    }
    if p.chars().any(char::is_control) {
        return Err(format!("{field} {p:?} contains control characters"));
    }
    if p[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "{field} {p:?} has an empty, '.' or '..' component (paths are not normalised; \
             write it plainly)"
        ));
    }
    Ok(())
}

/// Whether `rooted` (a checked path after `--root`) lies below `root`.
pub fn inside(root: Option<&Path>, rooted: &Path) -> bool {
    root.is_none_or(|r| rooted.starts_with(r))
}

/// Whether two targets are the same file or one would be a directory holding the other.
pub fn overlaps(a: &str, b: &str) -> bool {
    let under =
        |x: &str, y: &str| x.len() > y.len() && x.starts_with(y) && x[y.len()..].starts_with('/');
    a == b || under(a, b) || under(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_absolute_paths_only() {
        assert!(check_abs("path", "/etc/x/key").is_ok());
        for bad in [
            "/run/secrets/../../x",
            "/run/./x",
            "/run//x",
            "/run/x/",
            "rel/x",
            "/",
            "/..",
            "/x\n",
        ] {
            assert!(check_abs("path", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn nested_targets_overlap() {
        assert!(overlaps("/run/secrets/a", "/run/secrets/a"));
        assert!(overlaps("/run/secrets/a/b", "/run/secrets/a"));
        assert!(overlaps("/run/secrets", "/run/secrets/a"));
        assert!(!overlaps("/run/secrets/ab", "/run/secrets/a"));
        assert!(inside(Some(Path::new("/r")), Path::new("/r/run/x")));
        assert!(!inside(Some(Path::new("/r")), Path::new("/rx/run")));
    }
}
