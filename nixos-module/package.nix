# tskeyctl built from this repository. Only the Rust sources are part of the build input, so
# edits to docs or the module do not rebuild it.
{
  lib,
  rustPlatform,
}:
let
  manifest = (lib.importTOML ../Cargo.toml).package;
in
rustPlatform.buildRustPackage {
  pname = manifest.name;
  inherit (manifest) version;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      (lib.fileset.maybeMissing ../tests)
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  # Tests needing peers (sops, age, systemd-analyze, nixpkgs lib) print "skipped" without CI=true.
  doCheck = true;

  meta = {
    inherit (manifest) description;
    license = with lib.licenses; [
      mit
      asl20
    ];
    mainProgram = "tskeyctl";
    platforms = lib.platforms.linux;
  };
}
