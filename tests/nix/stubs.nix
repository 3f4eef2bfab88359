# Minimal stand-ins for the NixOS options nixos-module/ reads or writes, so the module can be
# evaluated with nixpkgs' `lib` alone (no nixpkgs checkout, no network). Each stub keeps the
# type and merge behaviour that matters to the assertions: systemd unit options concatenate
# lists and demand equal scalars (as nixpkgs' `unitOption` does), `tailscaled-autoconnect`
# exists exactly when `authKeyFile` is set, and oci-containers makes `podman-<name>` units.
{
  lib,
  # false = a nixpkgs from before `authKeyFile` and `tailscaled-autoconnect.service`.
  autoconnect ? true,
}:
{ config, ... }:
let
  inherit (lib) mkOption types;

  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      if lib.any (d: lib.isList d.value) defs then
        lib.concatMap (d: lib.toList d.value) defs
      else
        lib.mergeEqualOption loc defs;
  };
  list = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  unitOptions = mkOption {
    type = types.attrsOf unitOption;
    default = { };
  };

  service = types.submodule {
    options = {
      description = mkOption {
        type = types.str;
        default = "";
      };
      wantedBy = list;
      requiredBy = list;
      before = list;
      after = list;
      wants = list;
      requires = list;
      script = mkOption {
        type = types.lines;
        default = "";
      };
      unitConfig = unitOptions;
      serviceConfig = unitOptions;
    };
  };
  timer = types.submodule {
    options = {
      wantedBy = list;
      timerConfig = unitOptions;
    };
  };
  path = types.submodule {
    options = {
      wantedBy = list;
      pathConfig = unitOptions;
    };
  };
  container = types.submodule {
    options = {
      image = mkOption { type = types.str; };
      environment = mkOption {
        type = types.attrsOf types.str;
        default = { };
      };
      extraOptions = list;
    };
  };
  ts = config.services.tailscale;
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      default = [ ];
    };
    warnings = list;
    systemd.services = mkOption {
      type = types.attrsOf service;
      default = { };
    };
    systemd.timers = mkOption {
      type = types.attrsOf timer;
      default = { };
    };
    systemd.paths = mkOption {
      type = types.attrsOf path;
      default = { };
    };
    services.openssh.enable = lib.mkEnableOption "openssh";
    services.openssh.hostKeys = mkOption {
      type = types.listOf types.attrs;
      default = [
        {
          type = "rsa";
          bits = 4096;
          path = "/etc/ssh/ssh_host_rsa_key";
        }
        {
          type = "ed25519";
          path = "/etc/ssh/ssh_host_ed25519_key";
        }
      ];
    };
    services.tailscale = {
      enable = lib.mkEnableOption "tailscale";
    }
    // lib.optionalAttrs autoconnect {
      authKeyFile = mkOption {
        type = types.nullOr types.path;
        default = null;
      };
    };
    users.users = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.group = mkOption {
            type = types.str;
            default = "";
          };
          options.isSystemUser = mkOption {
            type = types.bool;
            default = false;
          };
        }
      );
      default = { };
    };
    users.groups = mkOption {
      type = types.attrsOf types.attrs;
      default = { };
    };
    system.activationScripts = mkOption {
      type = types.attrsOf types.unspecified;
      default = { };
    };
    system.build = mkOption {
      type = types.attrsOf types.unspecified;
      default = { };
    };
    virtualisation.oci-containers.backend = mkOption {
      type = types.enum [ "podman" ];
      default = "podman";
    };
    virtualisation.oci-containers.containers = mkOption {
      type = types.attrsOf container;
      default = { };
    };
  };

  config = {
    systemd.services = lib.mkMerge [
      (lib.mkIf ts.enable {
        tailscaled.wantedBy = [ "multi-user.target" ];
        tailscaled.serviceConfig.ExecStart = "/nix/store/tailscale/bin/tailscaled";
      })
      (lib.mkIf (ts.enable && autoconnect && ts.authKeyFile != null) {
        tailscaled-autoconnect = {
          after = [ "tailscaled.service" ];
          wants = [ "tailscaled.service" ];
          wantedBy = [ "multi-user.target" ];
          serviceConfig.Type = "notify";
          script = "tailscale up --auth-key \"$(cat ${ts.authKeyFile})\"";
        };
      })
      (lib.mapAttrs' (
        name: c:
        lib.nameValuePair "podman-${name}" {
          wantedBy = [ "multi-user.target" ];
          script = "exec podman run --rm --name=${name} ${lib.concatStringsSep " " c.extraOptions} ${c.image}";
          serviceConfig.ExecStartPre = [ "/nix/store/podman-${name}-pre-start" ];
          serviceConfig.Restart = "always";
        }
      ) config.virtualisation.oci-containers.containers)
    ];
  };
}
