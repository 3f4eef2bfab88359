{
  description = "tskeyctl: Tailscale auth keys and secrets from files encrypted to the host's SSH key";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.callPackage ./nixos-module/package.nix { };
        # Fully static (musl, from pkgsStatic). NOT BUILT OR TESTED by this project (its
        # machines have no nixpkgs); the tested static release is scripts/build-static's glibc
        # static-pie binary.
        static = pkgs.pkgsStatic.callPackage ./nixos-module/package.nix { };
      });

      overlays.default = final: _prev: {
        tskeyctl = final.callPackage ./nixos-module/package.nix { };
      };

      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nixos-module ];
          services.tskeyctl.package =
            lib.mkDefault
              self.packages.${pkgs.stdenv.hostPlatform.system}.default;
        };

      checks = forAllSystems (
        pkgs:
        let
          inherit (pkgs.stdenv.hostPlatform) system;
          # The README's example on a real NixOS evaluation (nixpkgs' own systemd, tailscale,
          # openssh and oci-containers modules).
          example =
            (nixpkgs.lib.nixosSystem {
              inherit system;
              modules = [
                self.nixosModules.default
                ./nixos-module/example.nix
                {
                  boot.loader.grub.enable = false;
                  fileSystems."/".device = "/dev/null";
                  system.stateVersion = "25.11";
                }
              ];
            }).config;
          failed = builtins.filter (a: !a.assertion) example.assertions;
          unitNames = [
            "tskeyctl-tailscale.service"
            "tskeyctl-tailscale-refresh.service"
            "tskeyctl-tailscale-refresh.timer"
            "tskeyctl-ci.service"
            "tskeyctl-ci-refresh.service"
            "tskeyctl-ci-refresh.path"
            "podman-web-ts.service"
            "tailscaled-autoconnect.service"
          ];
        in
        {
          package = self.packages.${system}.default;
          # Its build runs `tskeyctl install --check` on the example's manifest.
          example-manifest = example.system.build.tskeyctl-manifest;
          # The unit files NixOS renders for the example (after its assertions hold).
          example-units =
            if failed != [ ] then
              throw (nixpkgs.lib.concatMapStringsSep "\n" (a: a.message) failed)
            else
              pkgs.linkFarm "tskeyctl-example-units" (
                map (u: {
                  name = u;
                  path = "${example.systemd.units.${u}.unit}/${u}";
                }) unitNames
              );
          # The stub-based evaluation of tests/nix, with this nixpkgs' lib.
          module-eval = pkgs.writeText "tskeyctl-module-eval.json" (
            builtins.toJSON (import ./tests/nix/harness.nix { inherit (nixpkgs) lib; })
          );
        }
      );
    };
}
