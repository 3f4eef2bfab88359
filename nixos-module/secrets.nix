# `services.tskeyctl.secrets.<name>`: decrypt-only secrets, installed at activation by
# `tskeyctl install` from a manifest in sops-nix's shape (same field names, so the same manifest
# semantics: ramfs generations under secretsMountPoint, an atomic symlinkPath switch, owner/group/
# mode per secret, `path` symlinks). The manifest is checked at build time with
# `tskeyctl install --check`, which validates it and the encrypted files without decrypting.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.services.tskeyctl;
  users = config.users.users;

  formatOf =
    file:
    let
      f = toString file;
    in
    if lib.hasSuffix ".json" f then
      "json"
    else if lib.hasSuffix ".env" f then
      "dotenv"
    else if lib.hasSuffix ".ini" f then
      "ini"
    else
      "yaml";

  secretType = types.submodule (
    { name, config, ... }:
    {
      options = {
        name = mkOption {
          type = types.str;
          default = name;
          description = "File name below `symlinkPath` (may contain `/`).";
        };
        sopsFile = mkOption {
          type = types.path;
          description = "The sops-encrypted file (copied to the store; only ciphertext lives there).";
        };
        key = mkOption {
          type = types.str;
          default = name;
          description = ''Lookup path in the sops document, sops-nix syntax (`a/b`); `""` = the whole file.'';
        };
        format = mkOption {
          type = types.enum [
            "yaml"
            "json"
            "binary"
            "dotenv"
            "ini"
          ];
          default = formatOf config.sopsFile;
          defaultText = lib.literalMD "from the extension of `sopsFile` (`.json`, `.env`, `.ini`, else `yaml`)";
          description = "Format of `sopsFile`.";
        };
        path = mkOption {
          type = types.str;
          default = "${cfg.secretsSymlinkPath}/${config.name}";
          defaultText = lib.literalExpression ''"''${services.tskeyctl.secretsSymlinkPath}/<name>"'';
          description = "Where the secret appears; a symlink to `symlinkPath/<name>` if elsewhere.";
        };
        mode = mkOption {
          type = types.strMatching "0?[0-7]{3}";
          default = "0400";
          description = "Octal permission of the installed file.";
        };
        owner = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "User owning the file (null = root).";
        };
        group = mkOption {
          type = types.nullOr types.str;
          default = if config.owner != null then users.${config.owner}.group or null else null;
          defaultText = lib.literalMD "the primary group of `owner`, else root";
          description = "Group owning the file (null = root).";
        };
        restartUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
          example = [ "tailscaled-autoconnect.service" ];
          description = "Units to restart when the secret's content changes.";
        };
        reloadUnits = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Units to reload when the secret's content changes.";
        };
      };
    }
  );

  # One entry of the manifest's `secrets` list, field names exactly as sops-install-secrets reads.
  manifestSecret = s: {
    inherit (s)
      name
      key
      path
      format
      mode
      owner
      group
      restartUnits
      reloadUnits
      ;
    uid = 0;
    gid = 0;
    sopsFile = "${s.sopsFile}";
  };

  manifestData = {
    secrets = map manifestSecret (lib.attrValues cfg.secrets);
    templates = [ ];
    placeholderBySecretName = { };
    secretsMountPoint = cfg.secretsMountPoint;
    symlinkPath = cfg.secretsSymlinkPath;
    inherit (cfg) keepGenerations;
    sshKeyPaths = [ ];
    gnupgHome = null;
    ageKeyFile = null;
    ageSshKeyPaths = cfg.hostKeyPaths;
    useTmpfs = false;
    userMode = false;
    logging = {
      keyImport = true;
      secretChanges = true;
    };
  };

  exe = lib.getExe cfg.package;

  manifest = pkgs.writeTextFile {
    name = "tskeyctl-manifest.json";
    text = builtins.toJSON manifestData;
    checkPhase = "${exe} install --check \"$out\"";
  };

  # Key files written below the install symlink live in the current generation, which the next
  # activation replaces: re-provision them after the switch (switch-to-configuration reads this list).
  sidecarKeys = lib.mapAttrsToList (_: s: s.key) cfg.sidecars;
  keysBelowSymlink = lib.attrNames (
    lib.filterAttrs (
      n: k: !(lib.elem n sidecarKeys) && lib.hasPrefix "${cfg.secretsSymlinkPath}/" k.path
    ) cfg.keys
  );
  restartListLines = lib.concatMapStrings (
    n: "  echo ${lib.escapeShellArg "tskeyctl-${n}.service"} >> /run/nixos/activation-restart-list\n"
  ) keysBelowSymlink;
in
{
  options.services.tskeyctl = {
    secrets = mkOption {
      type = types.attrsOf secretType;
      default = { };
      description = "Decrypt-only secrets installed at activation by `tskeyctl install`.";
    };
    secretsMountPoint = mkOption {
      type = types.str;
      default = "/run/secrets.d";
      description = "ramfs holding the numbered generations (as sops-nix). Change it together with `secretsSymlinkPath` when sops-nix is also used.";
    };
    secretsSymlinkPath = mkOption {
      type = types.str;
      default = "/run/secrets";
      description = "Symlink switched atomically to the current generation.";
    };
    keepGenerations = mkOption {
      type = types.ints.unsigned;
      default = 1;
      description = "Generations kept (0 = never prune).";
    };
  };

  config = lib.mkIf (cfg.enable && cfg.secrets != { }) {
    system.build.tskeyctl-manifest = manifest;
    system.activationScripts.tskeyctl-secrets = lib.stringAfter [ "specialfs" "users" "groups" ] (
      ''
        echo "setting up secrets with tskeyctl..."
        ${lib.escapeShellArg exe} install ${lib.escapeShellArg "${manifest}"}
      ''
      + lib.optionalString (keysBelowSymlink != [ ]) ''
        if [ -d /run/nixos ]; then
        ${restartListLines}fi
      ''
    );
  };
}
