#!/usr/bin/env python3
"""Builds the `install` benchmark fixture in DIR (see bench/install.sh):

* an age identity at DIR/root/var/lib/sops-nix/key.txt;
* 20 sops yaml files (DIR/root/src/fNN.yaml), 10 secrets each (one nested), made by the real sops;
* manifest.json in sops-nix's shape for the 200 secrets (mode 0400, caller's uid/gid, a restart unit);
* the same 200 values as age files (DIR/root/age/fNN-kM.age), made by the real age;
* agenix.sh: the activation script agenix's modules/age.nix would generate for those 200 secrets
  (newGeneration + installSecret per secret + cleanupAndLink + chown), unrolled, under DIR/root.
"""
import json, os, secrets, subprocess, sys

d = os.path.abspath(sys.argv[1])
sops = os.environ.get("SOPS_BIN", "sops")
root = f"{d}/root"
for p in ["src", "age", "run", "var/lib/sops-nix", "scratch"]:
    os.makedirs(f"{root}/{p}", exist_ok=True)
key = f"{root}/var/lib/sops-nix/key.txt"
if not os.path.exists(key):
    subprocess.run(["age-keygen", "-o", key], check=True, capture_output=True)
rcpt = subprocess.run(["age-keygen", "-y", key], check=True, capture_output=True, text=True).stdout.strip()
uid, gid = os.geteuid(), os.getegid()

entries, script = [], []
script.append(f"""#!/usr/bin/env bash
# agenix-style activation (modules/age.nix newGeneration/installSecret/cleanupAndLink/chown), 200 secrets
set -u
secretsMountPoint={root}/run/agenix.d
secretsDir={root}/run/agenix
_agenix_generation="$(basename "$(readlink $secretsDir)" || echo 0)"
(( ++_agenix_generation ))
echo "[agenix] creating new generation in $secretsMountPoint/$_agenix_generation"
mkdir -p "$secretsMountPoint"
chmod 0751 "$secretsMountPoint"
mkdir -p "$secretsMountPoint/$_agenix_generation"
chmod 0751 "$secretsMountPoint/$_agenix_generation"
echo '[agenix] decrypting secrets...'
test -f {key} || echo '[agenix] WARNING: config.age.identityPaths entry {key} not present!'
""")
chown = []
for f in range(20):
    plain = {}
    for k in range(10):
        v = secrets.token_urlsafe(24)
        if k == 0:
            plain.setdefault("nested", {})["k0"] = v
            keypath = "nested/k0"
        else:
            plain[f"k{k}"] = v
            keypath = f"k{k}"
        name = f"f{f:02d}/k{k}"
        entries.append({
            "name": name, "key": keypath, "path": f"/run/secrets/{name}", "owner": None, "uid": uid,
            "group": None, "gid": gid, "sopsFile": f"/src/f{f:02d}.yaml", "sopsFileHash": "",
            "format": "yaml", "mode": "0400", "restartUnits": [f"svc{f:02d}.service"],
            "reloadUnits": [], "neededForUsers": False,
        })
        agefile = f"{root}/age/f{f:02d}-k{k}.age"
        subprocess.run(["age", "-r", rcpt, "-o", agefile], input=v.encode(), check=True)
        true_path = f"$secretsMountPoint/$_agenix_generation/{name}"
        script.append(f"""_truePath="{true_path}"
echo "decrypting '{agefile}' to '$_truePath'..."
TMP_FILE="$_truePath.tmp"
IDENTITIES=()
for identity in {key}; do
  test -r "$identity" || continue
  test -s "$identity" || continue
  IDENTITIES+=(-i)
  IDENTITIES+=("$identity")
done
test "${{#IDENTITIES[@]}}" -eq 0 && echo "[agenix] WARNING: no readable identities found!"
mkdir -p "$(dirname "$_truePath")"
[ "$secretsDir/{name}" != "$secretsDir/{name}" ] && mkdir -p "$(dirname "$secretsDir/{name}")"
(
  umask u=r,g=,o=
  test -f "{agefile}" || echo '[agenix] WARNING: encrypted file {agefile} does not exist!'
  test -d "$(dirname "$TMP_FILE")" || echo "[agenix] WARNING: $(dirname "$TMP_FILE") does not exist!"
  LANG=C age --decrypt "${{IDENTITIES[@]}}" -o "$TMP_FILE" "{agefile}"
)
chmod 0400 "$TMP_FILE"
mv -f "$TMP_FILE" "$_truePath"
""")
        chown.append(f'chown {uid}:{gid} "{true_path}"')
    import_plain = f"{root}/scratch/f{f:02d}.yaml"
    with open(import_plain, "w") as fh:
        json.dump(plain, fh)  # JSON is valid YAML
    out = subprocess.run([sops, "--encrypt", "--age", rcpt, "--input-type", "yaml", "--output-type", "yaml", import_plain],
                         check=True, capture_output=True, cwd=f"{root}/scratch", env={**os.environ, "HOME": f"{root}/scratch"})
    with open(f"{root}/src/f{f:02d}.yaml", "wb") as fh:
        fh.write(out.stdout)
    os.remove(import_plain)

script.append("""_agenix_generation="$(basename "$(readlink $secretsDir)" || echo 0)"
(( ++_agenix_generation ))
echo "[agenix] symlinking new secrets to $secretsDir (generation $_agenix_generation)..."
ln -sfT "$secretsMountPoint/$_agenix_generation" $secretsDir
(( _agenix_generation > 1 )) && {
echo "[agenix] removing old secrets (generation $(( _agenix_generation - 1 )))..."
rm -rf "$secretsMountPoint/$(( _agenix_generation - 1 ))"
}
echo '[agenix] chowning...'
chown :$(id -g) "$secretsMountPoint" "$secretsMountPoint/$_agenix_generation"
""")
script.extend(chown)
with open(f"{d}/agenix.sh", "w") as fh:
    fh.write("\n".join(script) + "\n")
os.chmod(f"{d}/agenix.sh", 0o755)
manifest = {
    "secrets": entries, "templates": [], "placeholderBySecretName": {},
    "secretsMountPoint": "/run/secrets.d", "symlinkPath": "/run/secrets", "keepGenerations": 1,
    "sshKeyPaths": [], "gnupgHome": None, "ageKeyFile": "/var/lib/sops-nix/key.txt",
    "ageSshKeyPaths": [], "useTmpfs": False, "userMode": False,
    "logging": {"keyImport": False, "secretChanges": True},
}
with open(f"{d}/manifest.json", "w") as fh:
    json.dump(manifest, fh, indent=1)
print(f"{len(entries)} secrets in 20 sops files and {len(entries)} age files under {root}")
