#!/usr/bin/env bash
# The main job, from a fresh clone: installs hearth's dependencies, starts the embedded single
# node (server + executor + SQLite) and runs `hearth remote test //...` on the bundled example
# workspace twice: cold, then on the recycled warm runner. Prints both times.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ ! -x node_modules/.bin/tsx ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "demo: installing dependencies (npm ci; the first time compiles SQLite, ~3 min)"
  npm ci --no-audit --no-fund >/dev/null
fi
command -v git >/dev/null || { echo "demo: git is required (apt-get install git)"; exit 1; }
command -v g++ >/dev/null || { echo "demo: a C++ compiler is required for the example (apt-get install g++)"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hearth-demo-XXXXXX")
DATA="$WORK/node"
NODE_PID=""
cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

hearth() { node "$ROOT/packages/cli/bin/hearth.js" "$@"; }

echo "demo: starting the embedded single node (hearth up)"
HEARTH_LOG_LEVEL=warn node "$ROOT/packages/cli/bin/hearth.js" up --data-dir "$DATA" --port 0 --cache-port 0 >"$WORK/up.log" 2>&1 &
NODE_PID=$!
for _ in $(seq 1 300); do
  URL=$(sed -n 's/^hearth is up at \(http[^ ]*\).*/\1/p' "$WORK/up.log")
  [ -n "$URL" ] && break
  kill -0 "$NODE_PID" 2>/dev/null || { cat "$WORK/up.log"; echo "demo: hearth up exited"; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { cat "$WORK/up.log"; echo "demo: hearth up did not start"; exit 1; }
echo "demo: node is up at $URL"

# A repository with a remote, like a developer's clone: hearth mirrors unpushed local state.
git init -q --bare -b main "$WORK/origin.git"
git clone -q "$WORK/origin.git" "$WORK/hello" 2>/dev/null
cp -r "$ROOT/examples/hello/." "$WORK/hello/"
(cd "$WORK/hello" && git add -A && git -c user.name=demo -c user.email=demo@example.invalid commit -qm "hello example" && git push -q origin main)

cd "$WORK/hello"
export HEARTH_SERVER="$URL"
run() {
  local label=$1 start end
  echo
  echo "demo: $label: hearth remote test //..."
  start=$(date +%s%N)
  hearth remote test //...
  end=$(date +%s%N)
  local ms=$(( (end - start) / 1000000 ))
  TIMES+=("$(printf '%-28s %d.%03d s' "$label:" $((ms / 1000)) $((ms % 1000)))")
}
TIMES=()
run "cold run"
run "warm run (recycled runner)"
echo
echo "demo: results"
printf '  %s\n' "${TIMES[@]}"
