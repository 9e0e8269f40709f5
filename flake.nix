{
  description = "Weft: a real-time gateway for microservices (Effect + Bun)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in {
      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          # npm scripts run the Bun pinned in package-lock.json (node_modules/.bin/bun); the
          # shell's Bun is for running files by hand. Deno runs the runtime-neutral packages.
          packages = [ pkgs.nodejs_20 pkgs.bun pkgs.deno pkgs.redis pkgs.wrk pkgs.git ];
          shellHook = ''
            export REDIS_URL="''${REDIS_URL:-redis://127.0.0.1:6379}"
            echo "weft dev shell: node $(node --version); run 'npm install && npm start'"
          '';
        };
      });
    };
}
