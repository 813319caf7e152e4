# Sourced by demo.sh and test.sh: make .venv (once) with the pinned set, then the package itself.
# Re-installs only when a lock file or setup.cfg changes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.asd-se-installed"
want="$(cat "$root/requirements.lock" "$root/requirements-talkset.lock" "$root/setup.cfg" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "asd-se: installing pinned requirements into $venv (first run only)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/requirements.lock"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$root/requirements-talkset.lock"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$root"
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
