{ ... }:
{
  services.openssh.enable = true; # its ed25519 host key decrypts the secrets
  services.tailscale.enable = true;

  services.tskeyctl = {
    enable = true;

    # The host joins the tailnet with a key minted at boot from an OAuth client secret.
    keys.tailscale = {
      sopsFile = ./example/secrets.yaml;
      key = "tailscale/oauth_client_secret";
      mint = {
        tags = [ "tag:server" ];
        ephemeral = false;
        expiry = "1h";
        description = "nixos host";
      };
      reuseIfValidFor = "15m";
      rotateInterval = "12h";
    };
    tailscaleAuthKey = "tailscale";

    # A podman sidecar gets a fresh ephemeral key as TS_AUTHKEY each time it starts.
    keys.web-ts = {
      ageFile = ./example/sidecar-oauth.age;
      mint = {
        tags = [ "tag:container" ];
        expiry = "10m";
        description = "web sidecar";
      };
      revokeOnStop = true;
    };
    sidecars.podman-web-ts.key = "web-ts";

    # OAuth credentials written by another tool, re-read whenever that file changes.
    keys.ci = {
      file = "/run/agenix/ci-oauth.env";
      mint.tags = [
        "tag:ci"
        "tag:build"
      ];
      path = "/run/secrets/ci/authkey";
      owner = "ci";
      group = "ci";
      mode = "0440";
      watchSource = true;
    };

    # Decrypt-only secrets, installed at activation (sops-nix's layout).
    secrets."grafana/admin-password" = {
      sopsFile = ./example/secrets.yaml;
      key = "grafana/admin_password";
      owner = "grafana";
      restartUnits = [ "grafana.service" ];
    };
  };

  users.users.grafana = {
    isSystemUser = true;
    group = "grafana";
  };
  users.users.ci = {
    isSystemUser = true;
    group = "ci";
  };
  users.groups.grafana = { };
  users.groups.ci = { };

  virtualisation.oci-containers.backend = "podman";
  virtualisation.oci-containers.containers.web-ts = {
    image = "docker.io/tailscale/tailscale:stable";
    environment = {
      TS_HOSTNAME = "web";
      TS_STATE_DIR = "/var/lib/tailscale";
      TS_USERSPACE = "true";
    };
    # Copies TS_AUTHKEY from the unit's EnvironmentFile=; the key never appears in argv.
    extraOptions = [ "--env=TS_AUTHKEY" ];
  };
}
