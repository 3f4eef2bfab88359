# Minimal stand-ins for the NixOS options nixos-module/ reads or writes, so the module can be
# evaluated with nixpkgs' `lib` alone (no nixpkgs checkout, no network). Each stub keeps the
# type and merge behaviour that matters to the assertions: systemd unit options concatenate
# lists and demand equal scalars (as nixpkgs' `unitOption` does), `tailscaled-autoconnect`
# exists exactly when `authKeyFile` is set, and oci-containers has nixpkgs' option names, types
# and defaults and makes the `podman-<name>` units nixpkgs' mkService makes (the same script).
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
      preStop = mkOption {
        type = types.lines;
        default = "";
      };
      postStop = mkOption {
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
  # virtualisation.oci-containers.containers.<name>: every option of nixpkgs'
  # nixos/modules/virtualisation/oci-containers.nix, with the same names, types and defaults.
  oci = config.virtualisation.oci-containers;
  nullOr = t: mkOption {
    type = types.nullOr t;
    default = null;
  };
  strList = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
  container = types.submodule (
    { name, ... }:
    {
      config.podman = lib.mkIf (oci.backend == "podman") { };
      options = {
        image = mkOption { type = types.str; };
        imageFile = nullOr types.package;
        imageStream = nullOr types.package;
        serviceName = mkOption {
          type = types.str;
          default = "${oci.backend}-${name}";
        };
        login = {
          username = nullOr types.str;
          passwordFile = nullOr types.str;
          registry = nullOr types.str;
        };
        cmd = strList;
        labels = mkOption {
          type = types.attrsOf types.str;
          default = { };
        };
        entrypoint = nullOr types.str;
        environment = mkOption {
          type = types.attrsOf types.str;
          default = { };
        };
        environmentFiles = mkOption {
          type = types.listOf types.path;
          default = [ ];
        };
        log-driver = mkOption {
          type = types.str;
          default = "journald";
        };
        ports = strList;
        user = nullOr types.str;
        volumes = strList;
        workdir = nullOr types.str;
        dependsOn = strList;
        hostname = nullOr types.str;
        preRunExtraOptions = strList;
        extraOptions = strList;
        autoStart = mkOption {
          type = types.bool;
          default = true;
        };
        podman = mkOption {
          type = types.nullOr (
            types.submodule {
              options.sdnotify = mkOption {
                type = types.enum [
                  "conmon"
                  "healthy"
                  "container"
                ];
                default = "conmon";
              };
              options.user = mkOption {
                type = types.str;
                default = "root";
              };
            }
          );
          default = null;
        };
        pull = mkOption {
          type = types.enum [
            "always"
            "missing"
            "never"
            "newer"
          ];
          default = "missing";
        };
        capabilities = mkOption {
          type = types.lazyAttrsOf (types.nullOr types.bool);
          default = { };
        };
        devices = strList;
        privileged = mkOption {
          type = types.bool;
          default = false;
        };
        autoRemoveOnStop = mkOption {
          type = types.bool;
          default = true;
        };
        networks = strList;
      };
    }
  );

  # The unit nixpkgs' mkService makes for a root podman container: the same `podman run` script,
  # dependsOn ordering, pre-start, preStop/postStop and service settings. (The pre-start script
  # is kept as text in `testing.storeScripts`, keyed by its stand-in store path.)
  esc = lib.escapeShellArg;
  preStart = name: ''
    podman rm -f ${name} || true
    rm -f /run/${esc name}/ctr-id
  '';
  preStartPath = name: "/nix/store/00000000000000000000000000000000-pre-start-${name}/bin/pre-start";
  mkService =
    name: c:
    let
      dependsOn = map (d: "${oci.containers.${d}.serviceName}.service") c.dependsOn;
      n = esc name;
    in
    {
      wantedBy = lib.optional c.autoStart "multi-user.target";
      wants = lib.optional (c.imageFile == null && c.imageStream == null) "network-online.target";
      after =
        lib.optional (c.imageFile == null && c.imageStream == null) "network-online.target" ++ dependsOn;
      requires = dependsOn;
      script = lib.concatStringsSep " \\\n  " (
        [ "exec podman " ]
        ++ map esc c.preRunExtraOptions
        ++ [
          "run"
          "--name=${n}"
          "--log-driver=${c.log-driver}"
        ]
        ++ lib.optional (c.entrypoint != null) "--entrypoint=${esc c.entrypoint}"
        ++ lib.optional (c.hostname != null) "--hostname=${esc c.hostname}"
        ++ [
          "--cidfile=/run/${n}/ctr-id"
          "--cgroups=enabled"
          "--sdnotify=${c.podman.sdnotify}"
          "-d"
          "--replace"
        ]
        ++ lib.mapAttrsToList (k: v: "-e ${esc k}=${esc v}") c.environment
        ++ map (f: "--env-file ${esc f}") c.environmentFiles
        ++ map (p: "-p ${esc p}") c.ports
        ++ lib.optional (c.user != null) "-u ${esc c.user}"
        ++ map (v: "-v ${esc v}") c.volumes
        ++ lib.mapAttrsToList (k: v: "-l ${esc k}=${esc v}") c.labels
        ++ lib.optional (c.workdir != null) "-w ${esc c.workdir}"
        ++ lib.optional c.privileged "--privileged"
        ++ lib.optional c.autoRemoveOnStop "--rm"
        ++ lib.mapAttrsToList (k: _: "--cap-add=${esc k}") (lib.filterAttrs (_: v: v == true) c.capabilities)
        ++ lib.mapAttrsToList (k: _: "--cap-drop=${esc k}") (lib.filterAttrs (_: v: v == false) c.capabilities)
        ++ map (d: "--device=${esc d}") c.devices
        ++ map (nw: "--network=${esc nw}") (lib.unique c.networks)
        ++ [ "--pull ${esc c.pull}" ]
        ++ map esc c.extraOptions
        ++ [ c.image ]
        ++ map esc c.cmd
      );
      preStop = "podman stop --ignore --cidfile=/run/${n}/ctr-id";
      postStop = "podman rm -f --ignore --cidfile=/run/${n}/ctr-id";
      serviceConfig = {
        ExecStartPre = [ (preStartPath name) ];
        TimeoutStartSec = 0;
        TimeoutStopSec = 120;
        Restart = "always";
        Environment = "PODMAN_SYSTEMD_UNIT=%n";
        Type = "notify";
        NotifyAccess = "all";
        User = c.podman.user;
        RuntimeDirectory = n;
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
      type = types.enum [
        "podman"
        "docker"
      ];
      default = "podman";
    };
    testing.storeScripts = mkOption {
      type = types.attrsOf types.str;
      default = { };
    };
    virtualisation.oci-containers.containers = mkOption {
      type = types.attrsOf container;
      default = { };
    };
  };

  config = {
    testing.storeScripts = lib.mapAttrs' (name: _: lib.nameValuePair (preStartPath name) (preStart name)) oci.containers;
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
      (lib.mapAttrs' (name: c: lib.nameValuePair c.serviceName (mkService name c)) oci.containers)
    ];
  };
}
