#!/usr/bin/env bash
# The test command: sets up .venv if needed, adds the test-only real footage, then runs the whole suite on CPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$root"
test_stamp="$venv/.asd-se-test-installed"
test_want="$(sha256sum requirements-test.lock | cut -d' ' -f1)"
if [ ! -f "$test_stamp" ] || [ "$(cat "$test_stamp")" != "$test_want" ]; then
  python -m pip install -q --disable-pip-version-check --no-deps -r requirements-test.lock
  echo "$test_want" > "$test_stamp"
fi
# Real recorded speech (Debian's pocketsphinx-testdata); where it cannot be installed those tests skip.
if ! dpkg -s pocketsphinx-testdata >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get install -y -qq pocketsphinx-testdata || { apt-get update -qq && apt-get install -y -qq pocketsphinx-testdata; }; } \
    >/dev/null 2>&1 || echo "asd-se: pocketsphinx-testdata not installed; real-speech tests will skip" >&2
fi
exec python -m pytest -q "$@"
