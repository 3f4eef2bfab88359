//! Process-wide safety defaults, applied before any secret is read.
//!
//! A secrets tool must not leave key material behind by accident: files it creates are private
//! (`umask 077`), and the process can neither dump core nor be ptrace-attached by other users
//! (`PR_SET_DUMPABLE 0`, `RLIMIT_CORE 0`). Failures here are reported as warnings, never fatal:
//! a container without `prctl` must still boot.

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::stat::{Mode, umask};

/// Applies umask 077 and disables core dumps. Returns the warnings to print (not secrets).
pub fn process() -> Vec<String> {
    let mut warnings = Vec::new();
    umask(Mode::from_bits_truncate(0o077));
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        warnings.push(format!("could not disable core dumps (prctl): {e}"));
    }
    if let Err(e) = setrlimit(Resource::RLIMIT_CORE, 0, 0) {
        warnings.push(format!("could not set RLIMIT_CORE to 0: {e}"));
    }
    warnings
}
