# The option type of `services.tskeyctl.keys.<name>`: where the credential comes from, how a
# fresh auth key is minted from it, and where and how the result is written.
{
  lib,
  sidecarKeys,
}:
let
  inherit (lib) mkOption types;

  # Paths that must stay out of the world-readable store (plaintext credentials).
  externalPath = types.externalPath or types.str;

  mintType = types.submodule {
    options = {
      tags = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "tag:server" ];
        description = "ACL tags of the minted key; required for OAuth clients, each `tag:…`.";
      };
      ephemeral = mkOption {
        type = types.bool;
        default = true;
        description = "Mint an ephemeral key (the node disappears when offline).";
      };
      reusable = mkOption {
        type = types.bool;
        default = false;
        description = "Mint a reusable key.";
      };
      preauthorized = mkOption {
        type = types.bool;
        default = true;
        description = "Mint a pre-authorised key (no admin approval).";
      };
      expiry = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "1h";
        description = "Key lifetime (humantime, 1s…90d); null = `services.tskeyctl.defaultExpiry`.";
      };
      description = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "nixos host";
        description = "Key description shown in the admin console (≤ 50 chars of `[A-Za-z0-9 -]`).";
      };
    };
  };
in
types.submodule (
  { name, ... }:
  {
    options = {
      sopsFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "A sops file (any format) holding the credential, encrypted to the host key.";
      };
      ageFile = mkOption {
        type = types.nullOr types.path;
        default = null;
        description = "An age file holding the credential, encrypted to the host key.";
      };
      file = mkOption {
        type = types.nullOr externalPath;
        default = null;
        example = "/run/secrets/tailscale-oauth.env";
        description = "A plaintext file or env file (e.g. written by another secret manager). Give a string, never a Nix path: it must not be copied to the store.";
      };
      key = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "tailscale/oauth";
        description = "Lookup path inside the decoded source (sops-nix syntax `a/b`); null = the whole document.";
      };
      format = mkOption {
        type = types.nullOr (
          types.enum [
            "yaml"
            "json"
            "dotenv"
            "ini"
            "binary"
          ]
        );
        default = null;
        description = "Format of the source; null = from the file name, as sops does.";
      };
      mint = mkOption {
        type = types.nullOr mintType;
        default = null;
        description = "Minting options, for sources holding an OAuth client secret or API key. null = the source holds an auth key, written as is.";
      };
      path = mkOption {
        type = types.strMatching "/.+";
        default = "/run/secrets/${name}";
        defaultText = lib.literalExpression ''"/run/secrets/<name>"'';
        description = "Where the auth key is written (atomically).";
      };
      outputFormat = mkOption {
        type = types.enum [
          "raw"
          "env"
        ];
        default = if lib.elem name sidecarKeys then "env" else "raw";
        defaultText = lib.literalMD ''`"env"` for keys used by a sidecar, else `"raw"`'';
        description = "`raw` (bare key, for `authKeyFile`) or `env` (`TS_AUTHKEY=…`, for `EnvironmentFile=`).";
      };
      owner = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Owner of the written file (null = root).";
      };
      group = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Group of the written file (null = root).";
      };
      mode = mkOption {
        type = types.strMatching "0?[0-7]{3}";
        default = "0600";
        description = "Octal mode of the written file.";
      };
      reuseIfValidFor = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "15m";
        description = "Keep the current key (no API call) if tskeyctl minted it and it stays valid this much longer.";
      };
      revokeOnStop = mkOption {
        type = types.bool;
        default = false;
        description = "Revoke the minted key when the unit using it stops.";
      };
      rotateInterval = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "12h";
        description = "Re-provision on a timer (systemd time span). With `reuseIfValidFor`, only keys close to expiry are replaced.";
      };
      watchSource = mkOption {
        type = types.bool;
        default = false;
        description = "Re-provision when the source file changes (a path unit); meant for `file` sources.";
      };
    };
  }
)
