#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs the whole suite on CPU.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$root"
exec python -m pytest -q "$@"
