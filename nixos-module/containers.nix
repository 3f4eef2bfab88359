# `services.tskeyctl.containers.<name>`: one Tailscale node per app (or group of apps) as a
# tailscale container `ts-<name>` in virtualisation.oci-containers, with its own hostname, tags
# and key. The key is minted in the container unit's ExecStartPre= by `tskeyctl provision
# --format env` into /run/secrets/ts-<name>.env, which podman reads with --env-file (so the key
# is in no argv), and revoked in ExecStopPost= — and, by default, as soon as the container's
# tailscaled has joined: its LocalAPI socket sits in a host directory bind-mounted into the
# container (TS_SOCKET), which `tskeyctl revoke --after-join` polls. Each app listed joins the
# node's network namespace (--network=container:ts-<name>) and starts after it (dependsOn).
{
  config,
  lib,
  options,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.services.tskeyctl;
  containers = cfg.containers;
  ours = toString ./containers.nix;

  keyName = name: "ts-${name}";
  envPath = name: "/run/secrets/ts-${name}.env";

  # Apps defined by someone other than this file (we add dependsOn/extraOptions to each app we
  # name, so the merged option has them either way; only other definitions tell what exists).
  definedApps = lib.unique (
    lib.concatMap (d: lib.attrNames d.value) (
      lib.filter (d: d.file != ours) options.virtualisation.oci-containers.containers.definitionsWithLocations
    )
  );
  allApps = lib.concatLists (lib.mapAttrsToList (_: c: c.apps) containers);

  containerType = types.submodule (
    { name, ... }:
    {
      options = {
        hostname = mkOption {
          type = types.strMatching "[A-Za-z0-9][A-Za-z0-9-]{0,62}";
          default = name;
          description = "Tailscale hostname of the node (`TS_HOSTNAME`) and the container's hostname.";
        };
        tags = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "tag:web" ];
          description = "ACL tags of the node's key (each `tag:…`, owned by the OAuth client).";
        };
        sopsFile = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "A sops file holding the OAuth client secret or API key, encrypted to the host key (as `keys.<name>.sopsFile`).";
        };
        ageFile = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "An age file holding the credential (as `keys.<name>.ageFile`).";
        };
        file = mkOption {
          type = types.nullOr (types.externalPath or types.str);
          default = null;
          description = "A plaintext credential file outside the store (as `keys.<name>.file`).";
        };
        key = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "tailscale/oauth";
          description = "Lookup path inside the decoded source (as `keys.<name>.key`).";
        };
        image = mkOption {
          type = types.str;
          default = "docker.io/tailscale/tailscale:stable";
          description = "The tailscale image.";
        };
        apps = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "web" ];
          description = "Names of `virtualisation.oci-containers.containers` that join this node's network namespace and start after it.";
        };
        extraArgs = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "--advertise-tags=tag:web" ];
          description = "Extra `tailscale up` arguments (`TS_EXTRA_ARGS`).";
        };
        stateDir = mkOption {
          type = types.strMatching "/.+";
          default = "/var/lib/tskeyctl-containers/${name}";
          defaultText = lib.literalExpression ''"/var/lib/tskeyctl-containers/<name>"'';
          description = "Host directory mounted as the node's `TS_STATE_DIR` (/var/lib/tailscale).";
        };
        ephemeral = mkOption {
          type = types.bool;
          default = true;
          description = "Mint ephemeral keys (the node disappears when the container stops).";
        };
        reusable = mkOption {
          type = types.bool;
          default = false;
          description = "Mint reusable keys.";
        };
        expiry = mkOption {
          type = types.str;
          default = "10m";
          description = "Lifetime of each key: only long enough for the container to join.";
        };
        reuseIfValidFor = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "5m";
          description = "On a restart without revoke, keep a key still valid this long (no API call).";
        };
        revokeOnStop = mkOption {
          type = types.bool;
          default = true;
          description = "Revoke the key when the container stops.";
        };
        revokeAfterJoin = mkOption {
          type = types.bool;
          default = true;
          description = "Revoke the key as soon as the container's tailscaled reports Running (`tskeyctl revoke --after-join --tailscaled-socket <socketDir>/tailscaled.sock` in `tskeyctl-ts-<name>-after-join.service`, started with the container's unit).";
        };
        socketDir = mkOption {
          type = types.strMatching "/.+";
          default = "/run/tskeyctl/ts-${name}";
          defaultText = lib.literalExpression ''"/run/tskeyctl/ts-<name>"'';
          description = "Host directory mounted at /run/tailscale in the container, where its tailscaled puts its LocalAPI socket (`TS_SOCKET=/run/tailscale/tailscaled.sock`), so the host can ask it whether it has joined.";
        };
      };
    }
  );
in
{
  options.services.tskeyctl.containers = mkOption {
    type = types.attrsOf containerType;
    default = { };
    example = lib.literalExpression ''
      {
        web = {
          sopsFile = ./tailscale-oauth.sops.yaml;
          key = "client_secret";
          tags = [ "tag:web" ];
          apps = [ "web" ];
        };
      }
    '';
    description = "Tailscale sidecar containers `ts-<name>` (virtualisation.oci-containers), each a node of its own with a key minted before it starts.";
  };

  config = lib.mkIf (cfg.enable && containers != { }) {
    assertions = lib.concatLists (
      lib.mapAttrsToList (
        name: c:
        let
          p = "services.tskeyctl.containers.${name}";
          badTags = lib.filter (t: !(lib.hasPrefix "tag:" t)) c.tags;
          unknown = lib.filter (a: !(lib.elem a definedApps)) c.apps;
          shared = lib.filter (a: lib.count (b: b == a) allApps > 1) c.apps;
        in
        [
          {
            assertion = c.tags != [ ];
            message = "${p}.tags is empty: the node's key needs at least one tag the OAuth client owns, e.g. [ \"tag:container\" ].";
          }
          {
            assertion = badTags == [ ];
            message = "${p}.tags: every tag must start with \"tag:\" (got ${lib.concatStringsSep ", " badTags}).";
          }
          {
            assertion = unknown == [ ];
            message = "${p}.apps: ${lib.concatStringsSep ", " unknown} not in virtualisation.oci-containers.containers.";
          }
          {
            assertion = shared == [ ];
            message = "${p}.apps: ${lib.concatStringsSep ", " shared} also listed by another of services.tskeyctl.containers; a container joins one network namespace.";
          }
        ]
      ) containers
    );

    services.tskeyctl.keys = lib.mapAttrs' (
      name: c:
      lib.nameValuePair (keyName name) {
        inherit (c)
          sopsFile
          ageFile
          file
          key
          reuseIfValidFor
          revokeOnStop
          ;
        mint = {
          inherit (c) tags ephemeral reusable expiry;
          preauthorized = true;
        };
        outputFormat = "env";
        path = envPath name;
      }
    ) containers;

    virtualisation.oci-containers.containers = lib.mkMerge (
      lib.mapAttrsToList (
        name: c:
        {
          ${keyName name} = {
            inherit (c) image hostname;
            environment =
              {
                TS_HOSTNAME = c.hostname;
                TS_STATE_DIR = "/var/lib/tailscale";
                TS_SOCKET = "/run/tailscale/tailscaled.sock";
              }
              // lib.optionalAttrs (c.extraArgs != [ ]) {
                TS_EXTRA_ARGS = lib.concatStringsSep " " c.extraArgs;
              };
            environmentFiles = [ (envPath name) ];
            volumes = [
              "${c.stateDir}:/var/lib/tailscale"
              "${c.socketDir}:/run/tailscale"
            ];
          };
        }
        // lib.genAttrs c.apps (_: {
          dependsOn = [ (keyName name) ];
          extraOptions = [ "--network=container:${keyName name}" ];
        })
      ) containers
    );
  };
}
