#!/usr/bin/env bash
# Create .venv and install the pinned stack plus dapt_core (editable). Re-running is cheap:
# the install only repeats when requirements.txt or pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "Creating virtual environment in .venv ..."
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.dapt-installed
wanted="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  echo "Installing requirements (a few minutes the first time) ..."
  .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.txt
  .venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -e .
  echo "$wanted" > "$stamp"
fi
