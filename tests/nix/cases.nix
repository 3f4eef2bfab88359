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
in
{
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
