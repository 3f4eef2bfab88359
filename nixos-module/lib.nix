# Command lines and unit settings shared by the key units, their refresh units and the podman
# sidecars. Everything here is a pure function of the module's configuration, so the eval test
# can assert the exact strings systemd will see.
{ lib }:
let
  inherit (lib)
    concatStringsSep
    escapeShellArg
    optional
    optionals
    replaceStrings
    ;

  # One argument for an Exec*= line. systemd splits on whitespace and expands `%` specifiers and
  # `$VAR`s, so anything beyond a conservative set of characters is double-quoted (JSON string
  # escapes are valid systemd C-style escapes) and `%`/`$` are doubled.
  escapeArg =
    arg:
    let
      s = toString arg;
      quoted = if builtins.match "[A-Za-z0-9_./:@,=+-]+" s != null then s else builtins.toJSON s;
    in
    replaceStrings [ "%" "$" ] [ "%%" "$$" ] quoted;

  execLine = args: concatStringsSep " " (map escapeArg args);

  # The exit codes that must not be retried: every code of the contract except 75 (temporary
  # failure: network, timeout, 429, 5xx after the tool's own retries), and 101 (a Rust panic).
  noRetryExitCodes = "1 2 65 66 73 77 78 101";
in
rec {
  inherit escapeArg execLine;

  # The source flag value of a key: exactly one of sopsFile / ageFile / file is set (asserted).
  sourceOf =
    key:
    if key.sopsFile != null then
      "${key.sopsFile}"
    else if key.ageFile != null then
      "${key.ageFile}"
    else
      key.file;

  # `tskeyctl provision …` for one key. `format` is raw or env (sidecars force env).
  provisionArgs =
    {
      exe,
      name,
      key,
      format,
      stateDir,
      hostKeyPaths,
      # Expiry of minted keys whose `mint.expiry` is null.
      defaultExpiry ? null,
      # Mint nothing while tailscaled is logged in (the key tailscaled joins with).
      skipIfLoggedIn ? false,
    }:
    [
      exe
      "provision"
      "--source"
      (sourceOf key)
    ]
    ++ optionals (key.key != null) [
      "--key"
      key.key
    ]
    ++ optionals (key.format != null) [
      "--input-type"
      key.format
    ]
    ++ [
      "--out"
      key.path
      "--format"
      format
      "--name"
      name
      "--state-dir"
      stateDir
    ]
    ++ optionals (key.owner != null) [
      "--owner"
      key.owner
    ]
    ++ optionals (key.group != null) [
      "--group"
      key.group
    ]
    ++ [
      "--mode"
      key.mode
    ]
    ++ optionals (key.mint != null) (
      [
        "--tags"
        (concatStringsSep "," key.mint.tags)
        (if key.mint.ephemeral then "--ephemeral" else "--no-ephemeral")
        (if key.mint.reusable then "--reusable" else "--no-reusable")
        (if key.mint.preauthorized then "--preauthorized" else "--no-preauthorized")
      ]
      ++ optionals (key.mint.expiry != null || defaultExpiry != null) [
        "--expiry"
        (if key.mint.expiry != null then key.mint.expiry else defaultExpiry)
      ]
      ++ optionals (key.mint.description != null) [
        "--description"
        key.mint.description
      ]
    )
    ++ optionals (key.reuseIfValidFor != null) [
      "--reuse-if-valid-for"
      key.reuseIfValidFor
    ]
    ++ optionals skipIfLoggedIn [ "--skip-if-logged-in" ]
    ++ lib.concatMap (p: [
      "-i"
      p
    ]) hostKeyPaths;

  # `tskeyctl revoke …`; credentials default to the source recorded in the state, decrypted
  # with the same host keys as the provision (without them a non-default hostKeyPaths would make
  # every revoke fail, silently behind the `-`).
  revokeArgs =
    {
      exe,
      name,
      stateDir,
      hostKeyPaths,
    }:
    [
      exe
      "revoke"
      "--state-dir"
      stateDir
      "--name"
      name
    ]
    ++ lib.concatMap (p: [
      "-i"
      p
    ]) hostKeyPaths;

  # `tskeyctl revoke --after-join …`: waits for tailscaled to report Running, then revokes the
  # key it joined with (credentials: the source recorded in the state, as for `revokeArgs`).
  # `tailscaledSocket`: a sidecar's socket; null = tailscaled's default.
  afterJoinArgs =
    {
      exe,
      name,
      stateDir,
      hostKeyPaths,
      timeoutSec,
      tailscaledSocket ? null,
    }:
    revokeArgs {
      inherit
        exe
        name
        stateDir
        hostKeyPaths
        ;
    }
    ++ [
      "--after-join"
      "--timeout"
      "${toString timeoutSec}s"
    ]
    ++ lib.optionals (tailscaledSocket != null) [
      "--tailscaled-socket"
      tailscaledSocket
    ];

  # Runs with full privileges (`+`), before the sandbox of the main command is set up: the
  # sandbox needs both directories to exist to make them writable.
  mkdirLine =
    { coreutils, dirs }: "+${coreutils}/bin/mkdir -p -m 0751 ${concatStringsSep " " (map escapeArg dirs)}";

  stateDirLine =
    { coreutils, stateDir }: "+${coreutils}/bin/mkdir -p -m 0700 ${escapeArg stateDir}";

  # The sandbox of every unit tskeyctl owns. It reads the host key and the source, talks HTTPS to
  # the Tailscale API, and writes only the output directory and the state directory.
  hardening =
    { writable, chown }:
    {
      UMask = "0077";
      ProtectSystem = "strict";
      ReadWritePaths = writable;
      ProtectHome = true;
      PrivateTmp = true;
      PrivateDevices = true;
      NoNewPrivileges = true;
      # Empty = no capability at all; CAP_CHOWN only when the output goes to another owner.
      CapabilityBoundingSet = concatStringsSep " " (optional chown "CAP_CHOWN");
      RestrictAddressFamilies = [
        "AF_UNIX"
        "AF_INET"
        "AF_INET6"
      ];
      ProtectKernelTunables = true;
      ProtectKernelModules = true;
      ProtectKernelLogs = true;
      ProtectControlGroups = true;
      ProtectClock = true;
      ProtectHostname = true;
      RestrictNamespaces = true;
      RestrictRealtime = true;
      RestrictSUIDSGID = true;
      LockPersonality = true;
      MemoryDenyWriteExecute = true;
      SystemCallArchitectures = "native";
      SystemCallFilter = [ "@system-service" ];
      LimitCORE = 0;
    };

  # Retry only what the contract calls temporary (exit 75); bounded by the start limit.
  retry = {
    Restart = "on-failure";
    RestartPreventExitStatus = noRetryExitCodes;
    RestartSec = "15s";
  };
  retryLimits = {
    StartLimitIntervalSec = 600;
    StartLimitBurst = 10;
  };

  inherit noRetryExitCodes;

  # Shell-quoted for activation scripts.
  shellLine = args: concatStringsSep " " (map escapeShellArg args);
}
