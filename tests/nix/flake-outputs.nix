# The root flake's outputs, called with a stand-in nixpkgs input (nixpkgs' lib, the stubs of
# ./pkgs.nix, and a buildRustPackage that returns its arguments as a derivation-shaped attrset),
# so that packages.default (nixos-module/package.nix), overlays.default and nixosModules.default
# evaluate without nixpkgs. `checks` are only listed: they need a real nixosSystem.
{
  lib,
  pkgs,
  evalConfig,
}:
let
  system = "x86_64-linux";
  rustPlatform.buildRustPackage =
    args:
    args
    // {
      type = "derivation";
      name = "${args.pname}-${args.version}";
      outPath = "/nix/store/11111111111111111111111111111111-${args.pname}-${args.version}";
    };
  # No `tskeyctl` attribute: the flake's module must supply the package itself.
  nixpkgsPkgs = removeAttrs pkgs [ "tskeyctl" ] // {
    callPackage =
      path: overrides:
      import path (
        {
          inherit lib rustPlatform;
          installShellFiles = { };
          openssh = { };
          age = { };
        }
        // overrides
      );
    stdenv.hostPlatform.system = system;
  };
  nixpkgs = {
    inherit lib;
    legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: nixpkgsPkgs);
  };
  flake = import ../../flake.nix;
  self = flake.outputs { inherit self nixpkgs; };
  package = self.packages.${system}.default;
  viaFlake = evalConfig {
    configuration = ../../nixos-module/example.nix;
    module = self.nixosModules.default;
    pkgs' = nixpkgsPkgs;
  };
in
{
  inherit (flake) description;
  inputs = flake.inputs.nixpkgs.url;
  systems = lib.attrNames self.packages;
  checks = lib.attrNames self.checks.${system};
  package = {
    inherit (package) pname version;
    lockFile = lib.removePrefix (toString ../..) (toString package.cargoLock.lockFile);
    inherit (package.meta) mainProgram;
    # `src` (lib.fileset) is not forced: it needs builtins.readFileType, i.e. Nix >= 2.14.
  };
  overlay = (self.overlays.default nixpkgsPkgs nixpkgsPkgs).tskeyctl.name;
  moduleExecStart = viaFlake.systemd.services.tskeyctl-tailscale.serviceConfig.ExecStart;
  moduleAssertions = map (a: a.message) (lib.filter (a: !a.assertion) viaFlake.assertions);
}
