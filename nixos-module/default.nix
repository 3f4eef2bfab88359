# NixOS module `services.tskeyctl`: Tailscale auth keys minted at boot from credentials encrypted
# to the host's SSH key, for tailscaled (`services.tailscale.authKeyFile`) and for podman
# sidecars (`EnvironmentFile=`), plus decrypt-only secrets installed at activation.
#
# Each key gets a hardened oneshot unit `tskeyctl-<name>.service` (or, for a sidecar, an
# `ExecStartPre=` in the sidecar's unit), optional `tskeyctl-<name>-refresh.{timer,path}` units,
# and a revoke on stop. Everything is a `tskeyctl` command line from ./lib.nix.
{
  config,
  lib,
  pkgs,
  options,
  ...
}:
let
  inherit (lib)
    mkOption
    mkIf
    types
    optional
    optionals
    ;
  cfg = config.services.tskeyctl;
  helpers = import ./lib.nix { inherit lib; };
  exe = lib.getExe cfg.package;

  # Keys of `containers.<name>` (./containers.nix) are provisioned by their container's unit too.
  containerKeys = map (n: "ts-${n}") (lib.attrNames cfg.containers);
  sidecarKeys = lib.mapAttrsToList (_: s: s.key) cfg.sidecars ++ containerKeys;
  # Keys with a unit of their own; a sidecar's key is provisioned by the sidecar's unit.
  ownKeys = lib.filterAttrs (n: _: !(lib.elem n sidecarKeys)) cfg.keys;

  # nixpkgs has `tailscaled-autoconnect.service` exactly where it has `authKeyFile`.
  hasAutoconnect = options.services.tailscale ? authKeyFile;
  tailscaleUnit = if hasAutoconnect then "tailscaled-autoconnect.service" else "tailscaled.service";
  tsKey = cfg.tailscaleAuthKey;

  provisionLine =
    name: key: format:
    helpers.execLine (
      helpers.provisionArgs {
        inherit
          exe
          name
          key
          format
          ;
        inherit (cfg) stateDir hostKeyPaths defaultExpiry;
        skipIfLoggedIn = name == tsKey && hasAutoconnect;
      }
    );
  # `-`: a revoke that fails (network down at shutdown) must not fail the unit.
  revokeLine =
    name:
    "-"
    + helpers.execLine (
      helpers.revokeArgs {
        inherit exe name;
        inherit (cfg) stateDir hostKeyPaths;
      }
    );
  mkdirLines = key: [
    (helpers.mkdirLine {
      inherit (pkgs) coreutils;
      dirs = [ (dirOf key.path) ];
    })
    (helpers.stateDirLine {
      inherit (pkgs) coreutils;
      inherit (cfg) stateDir;
    })
  ];

  network = {
    after = [ "network-online.target" ];
    wants = [ "network-online.target" ];
  };

  # The unit of a key (`refresh = false`) or its timer/path-triggered re-run (`refresh = true`).
  keyService =
    name: key: refresh:
    network
    // {
      description =
        if refresh then "Re-provision Tailscale auth key ${name}" else "Provision Tailscale auth key ${name}";
      unitConfig = helpers.retryLimits;
      serviceConfig =
        {
          Type = "oneshot";
          RemainAfterExit = !refresh;
          ExecStartPre = mkdirLines key;
          ExecStart = provisionLine name key key.outputFormat;
          # ExecStop= (not ExecStopPost=): runs only after a successful start.
          ExecStop = optional (!refresh && key.revokeOnStop) (revokeLine name);
          TimeoutStartSec = "5min";
        }
        // helpers.retry
        // helpers.hardening {
          writable = [
            (dirOf key.path)
            cfg.stateDir
          ];
          chown = key.owner != null || key.group != null;
        };
    }
    // lib.optionalAttrs (!refresh) {
      wantedBy = [ "multi-user.target" ] ++ optional (name == tsKey) tailscaleUnit;
      before = optional (name == tsKey) tailscaleUnit;
    }
    # --skip-if-logged-in asks tailscaled: start after it, so a logged-in node is seen as one.
    // lib.optionalAttrs (name == tsKey && hasAutoconnect) {
      after = network.after ++ [ "tailscaled.service" ];
    };

  # Revokes the tailscaled key once tailscaled has joined with it: runs after (and whenever)
  # tailscaled-autoconnect.service starts, waits for Running, revokes; a timeout keeps the key
  # (exit 75, recorded) and is not retried, since the key expires within minutes anyway.
  afterJoinService =
    name:
    network
    // {
      description = "Revoke Tailscale auth key ${name} once tailscaled has joined";
      wantedBy = [
        "multi-user.target"
        tailscaleUnit
      ];
      after = network.after ++ [ tailscaleUnit ];
      serviceConfig =
        {
          Type = "oneshot";
          ExecStart = helpers.execLine (
            helpers.afterJoinArgs {
              inherit exe name;
              inherit (cfg) stateDir hostKeyPaths;
              timeoutSec = cfg.joinTimeoutSec;
            }
          );
          TimeoutStartSec = "${toString (cfg.joinTimeoutSec + 120)}s";
        }
        // helpers.hardening {
          writable = [ cfg.stateDir ];
          chown = false;
        };
    };
  afterJoin =
    tsKey != null
    && hasAutoconnect
    && cfg.revokeAfterJoin
    && cfg.keys ? ${tsKey}
    && cfg.keys.${tsKey}.mint != null;

  refreshKeys = lib.filterAttrs (_: k: k.rotateInterval != null || k.watchSource) cfg.keys;

  sidecarService =
    unit: sc:
    let
      key = cfg.keys.${sc.key} or null;
    in
    mkIf (key != null) (
      network
      // {
        serviceConfig = {
          ExecStartPre = mkdirLines key ++ [ (provisionLine sc.key key "env") ];
          # `-`: the file does not exist yet when the ExecStartPre= lines are spawned.
          EnvironmentFile = [ "-${key.path}" ];
          # First, before the container unit's own clean-up (a failing ExecStopPost= skips the rest).
          ExecStopPost = lib.mkBefore (optional key.revokeOnStop (revokeLine sc.key));
        };
      }
    );

  # The unit of container `ts-<name>`: mint before podman runs (podman reads the file with
  # --env-file, so no EnvironmentFile= here), revoke after it stopped.
  containerService =
    name: c:
    let
      k = "ts-${name}";
      key = cfg.keys.${k};
    in
    lib.nameValuePair "${config.virtualisation.oci-containers.backend}-${k}" {
      serviceConfig = {
        ExecStartPre =
          mkdirLines key
          ++ [
            (helpers.stateDirLine {
              inherit (pkgs) coreutils;
              inherit (c) stateDir;
            })
            # The host side of the container's tailscaled socket (bind-mounted, TS_SOCKET).
            (helpers.stateDirLine {
              inherit (pkgs) coreutils;
              stateDir = c.socketDir;
            })
            (provisionLine k key "env")
          ];
        # First, before oci-containers' own clean-up: a failing ExecStopPost= skips the rest.
        ExecStopPost = lib.mkBefore (optional key.revokeOnStop (revokeLine k));
      };
    };

  # Revokes a container's key once the tailscaled inside has joined with it, through the socket
  # the container shares with the host (containers.nix): pulled in by each start of the
  # container's unit, after it is up, and stopped with it (BindsTo=). A timeout keeps the key
  # (exit 75); the container's ExecStopPost= revoke then finds it already revoked or revokes it.
  containerAfterJoinService =
    name: c:
    let
      k = "ts-${name}";
      unit = "${config.virtualisation.oci-containers.backend}-${k}.service";
    in
    lib.nameValuePair "tskeyctl-${k}-after-join" (
      network
      // {
        description = "Revoke Tailscale auth key ${k} once its container has joined";
        wantedBy = [ unit ];
        after = network.after ++ [ unit ];
        unitConfig.BindsTo = unit;
        serviceConfig =
          {
            Type = "oneshot";
            ExecStart = helpers.execLine (
              helpers.afterJoinArgs {
                inherit exe;
                name = k;
                inherit (cfg) stateDir hostKeyPaths;
                timeoutSec = cfg.joinTimeoutSec;
                tailscaledSocket = "${c.socketDir}/tailscaled.sock";
              }
            );
            TimeoutStartSec = "${toString (cfg.joinTimeoutSec + 120)}s";
          }
          // helpers.hardening {
            writable = [ cfg.stateDir ];
            chown = false;
          };
      }
    );

  # Output paths used more than once (keys and decrypt-only secrets share /run/secrets).
  allPaths =
    lib.mapAttrsToList (_: k: k.path) cfg.keys ++ lib.mapAttrsToList (_: s: s.path) cfg.secrets;
  clashes = lib.unique (lib.filter (p: lib.count (q: q == p) allPaths > 1) allPaths);

  validName = n: builtins.match "[A-Za-z0-9][A-Za-z0-9_.-]*" n != null;
  validDescription = d: builtins.match "[A-Za-z0-9 -]{1,50}" d != null;

  keyAssertions =
    name: key:
    let
      sources = lib.filter (s: key.${s} != null) [
        "sopsFile"
        "ageFile"
        "file"
      ];
      badTags = lib.filter (t: !(lib.hasPrefix "tag:" t)) (key.mint.tags or [ ]);
      p = "services.tskeyctl.keys.${name}";
    in
    [
      {
        assertion = lib.length sources == 1;
        message = "${p}: set exactly one of sopsFile, ageFile or file (now set: ${
          if sources == [ ] then "none" else lib.concatStringsSep ", " sources
        }).";
      }
      {
        assertion = validName name;
        message = "${p}: the key name is used in unit and state names; use only letters, digits, '_', '.' and '-' (starting with a letter or digit).";
      }
      {
        assertion = key.mint == null || key.mint.tags != [ ];
        message = "${p}.mint.tags is empty: minting with an OAuth client needs at least one tag the client owns, e.g. [ \"tag:server\" ]. Set mint = null if the source holds a ready auth key.";
      }
      {
        assertion = badTags == [ ];
        message = "${p}.mint.tags: every tag must start with \"tag:\" (got ${lib.concatStringsSep ", " badTags}).";
      }
      {
        assertion = key.mint == null || key.mint.description == null || validDescription key.mint.description;
        message = "${p}.mint.description: at most 50 characters of letters, digits, spaces and '-' (the Tailscale API rejects others).";
      }
    ];
in
{
  imports = [
    ./secrets.nix
    ./containers.nix
  ];

  options.services.tskeyctl = {
    enable = lib.mkEnableOption "tskeyctl: Tailscale auth keys and secrets from files encrypted to the host's SSH key";

    package = lib.mkPackageOption pkgs "tskeyctl" { };

    hostKeyPaths = mkOption {
      type = types.listOf types.str;
      default = map (k: k.path) (lib.filter (k: k.type == "ed25519") config.services.openssh.hostKeys);
      defaultText = lib.literalExpression ''map (k: k.path) (lib.filter (k: k.type == "ed25519") config.services.openssh.hostKeys)'';
      description = "SSH ed25519 private keys that decrypt the sources (passed as `-i`). Strings, so they stay out of the store.";
    };

    stateDir = mkOption {
      type = types.strMatching "/.+";
      default = "/var/lib/tskeyctl";
      description = "Where tskeyctl records what it minted (never the keys), read by `status` and `revoke`.";
    };

    keys = mkOption {
      type = types.attrsOf (import ./keys.nix { inherit lib sidecarKeys; });
      default = { };
      description = "Auth keys to provision, by name.";
    };

    tailscaleAuthKey = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "tailscale";
      description = "Name of the key that becomes `services.tailscale.authKeyFile`; its unit runs before `tailscaled-autoconnect.service` (or `tailscaled.service` on a nixpkgs without it).";
    };

    defaultExpiry = mkOption {
      type = types.nullOr types.str;
      default = "10m";
      example = "1h";
      description = "Lifetime of the keys the module mints when a key's `mint.expiry` is null (humantime). Minutes suffice: tailscaled and sidecars use a key once, at login; null = tskeyctl's own default.";
    };

    revokeAfterJoin = mkOption {
      type = types.bool;
      default = true;
      description = "Revoke the `tailscaleAuthKey` key as soon as tailscaled reports Running (`tskeyctl revoke --after-join` in `tskeyctl-<name>-after-join.service`, after `tailscaled-autoconnect.service`). Only for minted keys, on a nixpkgs with `tailscaled-autoconnect`.";
    };

    joinTimeoutSec = mkOption {
      type = types.ints.positive;
      default = 300;
      description = "How long the after-join revoke waits for tailscaled to report Running before it keeps the key (exit 75).";
    };

    sidecars = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.key = mkOption {
            type = types.str;
            description = "Name of the key (in `services.tskeyctl.keys`) provisioned before this unit starts.";
          };
        }
      );
      default = { };
      example = {
        podman-ts-sidecar.key = "sidecar";
      };
      description = "systemd services (attribute names of `systemd.services`, e.g. `podman-<container>`) that get the key as `TS_AUTHKEY` through `EnvironmentFile=`.";
    };
  };

  config = mkIf cfg.enable {
    assertions =
      lib.concatLists (lib.mapAttrsToList keyAssertions cfg.keys)
      ++ [
        {
          assertion = cfg.hostKeyPaths != [ ] || lib.all (k: k.file != null) (lib.attrValues cfg.keys) && cfg.secrets == { };
          message = "services.tskeyctl.hostKeyPaths is empty, so nothing can decrypt sopsFile/ageFile sources: enable services.openssh with an ed25519 host key or set hostKeyPaths.";
        }
        {
          assertion = clashes == [ ];
          message = "services.tskeyctl: these paths are written by two keys or by a key and a secret: ${lib.concatStringsSep ", " clashes}; give each its own path.";
        }
        {
          assertion = tsKey == null || cfg.keys ? ${tsKey};
          message = "services.tskeyctl.tailscaleAuthKey = \"${toString tsKey}\" is not a key in services.tskeyctl.keys (known: ${lib.concatStringsSep ", " (lib.attrNames cfg.keys)}).";
        }
        {
          assertion = tsKey == null || !(cfg.keys ? ${tsKey}) || cfg.keys.${tsKey}.outputFormat == "raw";
          message = "services.tskeyctl.keys.${toString tsKey}.outputFormat must be \"raw\": services.tailscale.authKeyFile expects the bare key.";
        }
        {
          assertion = tsKey == null || !(lib.elem tsKey sidecarKeys);
          message = "services.tskeyctl.keys.${toString tsKey} is both tailscaleAuthKey and a sidecar key; give the sidecar a key of its own.";
        }
      ]
      ++ lib.concatLists (
        lib.mapAttrsToList (unit: sc: [
          {
            assertion = cfg.keys ? ${sc.key};
            message = "services.tskeyctl.sidecars.${unit}.key = \"${sc.key}\" is not a key in services.tskeyctl.keys.";
          }
          {
            assertion = !(cfg.keys ? ${sc.key}) || cfg.keys.${sc.key}.outputFormat == "env";
            message = "services.tskeyctl.keys.${sc.key}.outputFormat must be \"env\": sidecar ${unit} reads it with EnvironmentFile=.";
          }
          {
            assertion = lib.length (lib.filter (k: k == sc.key) sidecarKeys) == 1;
            message = "services.tskeyctl.keys.${sc.key} is used by several sidecars; each sidecar needs its own key (they would overwrite one file).";
          }
          {
            assertion =
              let
                s = config.systemd.services.${unit};
              in
              s.script != "" || s.serviceConfig ? ExecStart;
            message = "services.tskeyctl.sidecars.${unit}: systemd.services.${unit} has no ExecStart; name the container's unit, e.g. podman-<container> for virtualisation.oci-containers.";
          }
        ]) cfg.sidecars
      );

    systemd.services =
      lib.mapAttrs' (name: key: lib.nameValuePair "tskeyctl-${name}" (keyService name key false)) ownKeys
      // lib.mapAttrs' (
        name: key: lib.nameValuePair "tskeyctl-${name}-refresh" (keyService name key true)
      ) refreshKeys
      // lib.mapAttrs sidecarService cfg.sidecars
      // lib.mapAttrs' containerService cfg.containers
      // lib.mapAttrs' containerAfterJoinService (lib.filterAttrs (_: c: c.revokeAfterJoin) cfg.containers)
      // lib.optionalAttrs afterJoin {
        "tskeyctl-${tsKey}-after-join" = afterJoinService tsKey;
      };

    systemd.timers = lib.mapAttrs' (
      name: key:
      lib.nameValuePair "tskeyctl-${name}-refresh" {
        wantedBy = [ "timers.target" ];
        timerConfig = {
          OnActiveSec = key.rotateInterval;
          OnUnitActiveSec = key.rotateInterval;
          RandomizedDelaySec = "5min";
        };
      }
    ) (lib.filterAttrs (_: k: k.rotateInterval != null) cfg.keys);

    systemd.paths = lib.mapAttrs' (
      name: key:
      lib.nameValuePair "tskeyctl-${name}-refresh" {
        wantedBy = [ "paths.target" ];
        pathConfig.PathChanged = helpers.sourceOf key;
      }
    ) (lib.filterAttrs (_: k: k.watchSource) cfg.keys);

    services.tailscale = lib.optionalAttrs hasAutoconnect {
      authKeyFile = mkIf (tsKey != null && cfg.keys ? ${tsKey}) cfg.keys.${tsKey}.path;
    };
  };
}
