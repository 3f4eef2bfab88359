# The few `pkgs` attributes nixos-module/ uses, as inert derivation-shaped attrsets: enough for
# `mkPackageOption`, `lib.getExe` and string interpolation, without nixpkgs or a store.
let
  fakeDrv = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    outputName = "out";
    meta = { };
  };
in
{
  tskeyctl = fakeDrv "tskeyctl-0.1.0" // {
    meta.mainProgram = "tskeyctl";
  };
  coreutils = fakeDrv "coreutils-9.7";
  # writeTextFile: a derivation-shaped attrset that keeps its arguments for the test to inspect.
  writeTextFile =
    args:
    fakeDrv args.name
    // {
      inherit (args) text;
      checkPhase = args.checkPhase or "";
    };
}
