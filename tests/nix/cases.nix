# Configurations for tests/nix/eval.nix besides nixos-module/example.nix. Sources are given as
# absolute strings so nothing has to exist on disk.
let
  host = {
    services.openssh.enable = true;
    services.tailscale.enable = true;
  };
  withKeys =
    keys: extra:
    {
      imports = [ host ];
      services.tskeyctl = {
        enable = true;
        inherit keys;
      }
      // extra;
    };
  sops = "/nix/store/11111111111111111111111111111111-tailscale.yaml";

  # A Tailscale node of its own for the container podtest-app (services.tskeyctl.containers).
  containers = {
    imports = [ host ];
    services.tskeyctl = {
      enable = true;
      containers.podtest = {
        sopsFile = sops;
        tags = [ "tag:container" ];
        apps = [ "podtest-app" ];
        extraArgs = [
          "--advertise-tags=tag:container"
          "--accept-routes"
        ];
        reuseIfValidFor = "5m";
      };
    };
    virtualisation.oci-containers.containers.podtest-app.image = "docker.io/library/nginx:stable";
  };
  # services.tskeyctl.containers as given, with the oci-containers `apps` defined.
  withContainers = containers: apps: {
    imports = [ (withKeys { } { inherit containers; }) ];
    virtualisation.oci-containers.containers = builtins.listToAttrs (
      map (name: {
        inherit name;
        value.image = "docker.io/library/nginx:stable";
      }) apps
    );
  };
in
{
  inherit containers;
  # The same, run under the real podman by tests/it/podman_module.rs: the local stand-in image
  # (no registry), logs to files (no journald), and commands that report what the containers
  # see (hashes of the key, the TS_* variables, the state directory, TS_SOCKET once a socket is
  # there) into /tmp/tskeyctl-podtest-out.
  containersLocal =
    let
      image = "localhost/tskeyctl-test-busybox:1";
      out = "/tmp/tskeyctl-podtest-out";
      wait = "trap 'exit 0' TERM; while true; do sleep 1; done";
    in
    { lib, ... }:
    {
      imports = [ containers ];
      services.tskeyctl.containers.podtest.image = image;
      virtualisation.oci-containers.containers = {
        ts-podtest = {
          log-driver = "k8s-file";
          volumes = [ "${out}:/out" ];
          cmd = [
            "/bin/sh"
            "-c"
            ("(while [ ! -S \"$TS_SOCKET\" ]; do sleep 1; done; echo \"$TS_SOCKET\" > /out/ts.socket) & "
              + "printf %s \"$TS_AUTHKEY\" | sha256sum > /out/ts.sha256; "
              + "echo \"$TS_HOSTNAME|$TS_STATE_DIR|$TS_EXTRA_ARGS|$(hostname)\" > /out/ts.env; "
              + "echo state > /var/lib/tailscale/marker; readlink /proc/self/ns/net > /out/ts.netns; ${wait}")
          ];
        };
        podtest-app = {
          image = lib.mkForce image;
          log-driver = "k8s-file";
          volumes = [ "${out}:/out" ];
          cmd = [
            "/bin/sh"
            "-c"
            "printf %s \"$TS_AUTHKEY\" | sha256sum > /out/app.sha256; readlink /proc/self/ns/net > /out/app.netns; ${wait}"
          ];
        };
      };
    };

  # A ready auth key copied from a plain file: no minting flags, no refresh units.
  minimal = withKeys {
    tailscale.file = "/run/keys/tailscale-authkey";
  } { tailscaleAuthKey = "tailscale"; };

  rejected = {
    twoSources = withKeys {
      k = {
        sopsFile = sops;
        file = "/run/keys/k";
      };
    } { };
    noSource = withKeys { k.key = "a/b"; } { };
    mintWithoutTags = withKeys {
      k = {
        sopsFile = sops;
        mint.expiry = "1h";
      };
    } { };
    badTags = withKeys {
      k = {
        sopsFile = sops;
        mint.tags = [
          "tag:ok"
          "server"
          "Tag:x"
        ];
      };
    } { };
    badDescription = withKeys {
      k = {
        sopsFile = sops;
        mint.tags = [ "tag:ok" ];
        mint.description = "host_1 (prod)";
      };
    } { };
    badName = withKeys { "my key".sopsFile = sops; } { };
    unknownTailscaleKey = withKeys { k.sopsFile = sops; } { tailscaleAuthKey = "tailscale"; };
    envForTailscale = withKeys {
      k = {
        sopsFile = sops;
        outputFormat = "env";
      };
    } { tailscaleAuthKey = "k"; };
    sidecarWithoutUnit = withKeys { k.sopsFile = sops; } { sidecars.podman-typo.key = "k"; };
    sidecarRawKey = {
      imports = [
        (withKeys {
          k = {
            sopsFile = sops;
            outputFormat = "raw";
          };
        } { sidecars.podman-web.key = "k"; })
      ];
      virtualisation.oci-containers.containers.web.image = "docker.io/tailscale/tailscale:stable";
    };
    containerUnknownApp = withContainers {
      a = {
        sopsFile = sops;
        tags = [ "tag:a" ];
        apps = [
          "web"
          "typo"
        ];
      };
    } [ "web" ];
    containerAppTwice = withContainers {
      a = {
        sopsFile = sops;
        tags = [ "tag:a" ];
        apps = [ "web" ];
      };
      b = {
        sopsFile = sops;
        tags = [ "tag:b" ];
        apps = [ "web" ];
      };
    } [ "web" ];
    containerBadTags = withContainers {
      a = {
        sopsFile = sops;
        tags = [
          "tag:ok"
          "web"
        ];
      };
    } [ ];
    noHostKey = withKeys { k.sopsFile = sops; } { hostKeyPaths = [ ]; };
    samePath = withKeys {
      a.sopsFile = sops;
      b = {
        sopsFile = sops;
        path = "/run/secrets/c";
      };
    } { secrets.c.sopsFile = sops; };
  };
}
