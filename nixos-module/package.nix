# tskeyctl built from this repository. Only the Rust sources are part of the build input, so
# edits to docs or the module do not rebuild it.
{
  lib,
  rustPlatform,
  installShellFiles,
  openssh,
  age,
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
      (lib.fileset.maybeMissing ../examples)
      (lib.fileset.maybeMissing ../secrets.example)
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [ installShellFiles ];

  # Tests needing peers (sops, systemd-analyze, nixpkgs lib) print "skipped" without CI=true;
  # the key tests run ssh-keygen and age.
  doCheck = true;
  nativeCheckInputs = [
    openssh
    age
  ];

  # Man page and completions come from the same clap definitions as --help.
  postInstall = ''
    installShellCompletion --cmd tskeyctl \
      --bash <($out/bin/tskeyctl generate completions bash) \
      --zsh <($out/bin/tskeyctl generate completions zsh) \
      --fish <($out/bin/tskeyctl generate completions fish)
    mkdir -p man
    $out/bin/tskeyctl generate man --dir man
    installManPage man/*.1
  '';

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
