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
# Debian packages the tests use where they can be installed (else those tests skip, saying why): real recorded
# speech (pocketsphinx-testdata) and a real browser for the review page (chromium + chromium-driver).
apt_need() {  # apt_need WHAT PACKAGE...: install the packages missing, as root where apt-get exists
  local what="$1" missing=()
  shift
  for package in "$@"; do dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package"); done
  [ "${#missing[@]}" = 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    { apt-get install -y -qq "${missing[@]}" || { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; }; } \
      >/dev/null 2>&1 && return 0
  fi
  echo "asd-se: ${missing[*]} not installed; $what tests will skip" >&2
}
apt_need real-speech pocketsphinx-testdata
apt_need browser chromium chromium-driver
exec python -m pytest -q "$@"
