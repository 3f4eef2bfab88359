//! The sops binary store: parse alone, detect, decrypt with the fixed identities, render.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskeyctl::sops::Format;

fuzz_target!(|data: &[u8]| tskeyctl_fuzz::sops(Format::Binary, data));
