# Evaluates nixos-module/ against the stub options of ./stubs.nix with nixpkgs' `lib` only, for
# nixos-module/example.nix (the README's configuration) and for the cases of ./cases.nix, and
# returns what the Rust test (tests/it/nixos_module.rs) asserts: the generated units, the tailscale
# wiring, the install manifest and the failed assertions.
#
#   NIXPKGS_LIB=../shared/nixpkgs-lib/lib nix-instantiate --readonly-mode --eval --strict --json tests/nix/eval.nix
let
  libDir = builtins.getEnv "NIXPKGS_LIB";
  # A relative NIXPKGS_LIB is taken from the working directory.
  absolute = if builtins.substring 0 1 libDir == "/" then libDir else builtins.getEnv "PWD" + "/" + libDir;
in
if libDir == "" then
  throw "set NIXPKGS_LIB to a nixpkgs lib/ directory"
else
  import ./harness.nix { lib = import (/. + absolute); }
