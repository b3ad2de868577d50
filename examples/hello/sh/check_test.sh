#!/usr/bin/env bash
# Usage: check_test.sh PATH_TO_HELLO
# Checks that //app:hello greets and echoes its arguments.
#
# Failing on demand (for exercising failed-run paths without editing files):
#   bazel test //sh:check_test --test_env=HEARTH_HELLO_FAIL=1
set -euo pipefail

hello="$1"

if [[ "${HEARTH_HELLO_FAIL:-}" == "1" ]]; then
  echo "check_test: failing on purpose because HEARTH_HELLO_FAIL=1"
  exit 1
fi

got="$("$hello" a b)"
want="Hello from hearth: a b"
if [[ "$got" != "$want" ]]; then
  echo "check_test: got '$got', want '$want'"
  exit 1
fi

got="$("$hello")"
if [[ "$got" != "Hello from hearth" ]]; then
  echo "check_test: got '$got' without args, want 'Hello from hearth'"
  exit 1
fi

echo "check_test: ok"
