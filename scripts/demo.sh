#!/usr/bin/env bash
# The main job: sets up .venv if needed, then runs the whole asd-se pipeline on synthetic data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$root"
exec asd-se demo --out "${1:-demo_out}"
