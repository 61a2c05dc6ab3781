#!/usr/bin/env bash
# Install Azurite (Microsoft's Azure Storage emulator, from the npm registry) under .tools/azurite
# for `make test-azure`. Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
version="3.35.0"
binary=".tools/azurite/node_modules/.bin/azurite-blob"
if [ -x "$binary" ] && grep -q "\"version\": \"$version\"" .tools/azurite/node_modules/azurite/package.json; then exit 0; fi
command -v npm >/dev/null || { echo "npm not found: Azurite needs Node.js and npm (apt-get install nodejs npm)" >&2; exit 1; }
mkdir -p .tools/azurite
npm install --silent --no-audit --no-fund --prefix .tools/azurite "azurite@$version"
"$binary" --version >/dev/null
