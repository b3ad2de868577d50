#!/usr/bin/env bash
# Regenerates packages/cache/src/gen from packages/cache/proto with buf + ts-proto (offline).
#   scripts/gen.sh            write into src/gen (commit the result)
#   scripts/gen.sh OUT_DIR    write into OUT_DIR/src/gen instead (used by the drift test)
set -euo pipefail
pkg_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo_root="$(cd "$pkg_dir/../.." && pwd)"
export PATH="$repo_root/node_modules/.bin:$PATH"
cd "$pkg_dir"
if [[ $# -ge 1 ]]; then
  buf generate --template buf.gen.yaml -o "$1"
else
  buf generate --template buf.gen.yaml
fi
