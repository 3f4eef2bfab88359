# The module evaluation behind tests/nix/eval.nix, as a function of nixpkgs' `lib` so that the
# flake's checks can run it with the `lib` of their nixpkgs input.
{ lib }:
let
  pkgs = import ./pkgs.nix;

  evalConfig =
    {
      configuration,
      autoconnect ? true,
      module ? ../../nixos-module,
      pkgs' ? pkgs,
    }:
    (lib.evalModules {
      modules = [
        (import ./stubs.nix { inherit lib autoconnect; })
        module
        configuration
        { _module.args.pkgs = pkgs'; }
      ];
    }).config;

  summary =
    config:
    let
      ours = lib.filterAttrs (
        n: _: lib.hasPrefix "tskeyctl-" n || lib.hasPrefix "tailscaled" n || lib.hasPrefix "podman-" n
      ) config.systemd.services;
    in
    {
      failedAssertions = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
      services = lib.mapAttrs (
        n: s:
        {
          inherit (s)
            description
            wantedBy
            before
            after
            wants
            unitConfig
            serviceConfig
            ;
        }
        # What NixOS turns into ExecStart=/ExecStop=/ExecStopPost= of the container units.
        // lib.optionalAttrs (lib.hasPrefix "podman-" n) {
          inherit (s)
            requires
            script
            preStop
            postStop
            ;
        }
      ) ours;
      storeScripts = config.testing.storeScripts;
      inherit (config.systemd) timers paths;
      authKeyFile = config.services.tailscale.authKeyFile or null;
      manifest =
        let
          m = config.system.build.tskeyctl-manifest or null;
        in
        if m == null then
          null
        else
          {
            inherit (m) name checkPhase;
            path = "${m}";
            json = builtins.fromJSON (builtins.unsafeDiscardStringContext m.text);
          };
      activation = config.system.activationScripts.tskeyctl-secrets or null;
      package = config.services.tskeyctl.package.name;
    };

  # Only the failed assertions, for the configurations that must be rejected.
  failures = configuration: (summary (evalConfig { inherit configuration; })).failedAssertions;
  cases = import ./cases.nix;
in
{
  example = summary (evalConfig {
    configuration = ../../nixos-module/example.nix;
  });
  # A nixpkgs without tailscaled-autoconnect: the key unit goes before tailscaled itself.
  noAutoconnect = summary (evalConfig {
    configuration = cases.minimal;
    autoconnect = false;
  });
  minimal = summary (evalConfig { configuration = cases.minimal; });
  containers = summary (evalConfig { configuration = cases.containers; });
  containersLocal = summary (evalConfig { configuration = cases.containersLocal; });
  containersNoAfterJoin = summary (evalConfig {
    configuration = {
      imports = [ cases.containers ];
      services.tskeyctl.containers.podtest.revokeAfterJoin = false;
    };
  });
  rejected = lib.mapAttrs (_: failures) cases.rejected;
  flake = import ./flake-outputs.nix { inherit lib pkgs evalConfig; };
}
