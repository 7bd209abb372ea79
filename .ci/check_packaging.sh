#!/usr/bin/env bash
# Packaging check: build the sdist and the wheel, `twine check` them, install the wheel into a fresh
# virtual environment (no --system-site-packages: only the core dependencies and the wheel), and make
# every registered id from it, outside the source tree, with the package data present.
# Usage: .ci/check_packaging.sh [workdir]   (default: a temporary directory, removed afterwards)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
keep=${1:+1}
trap '[ -z "$keep" ] && rm -rf "$work"' EXIT
mkdir -p "$work"

echo "+ python -m build (sdist, then the wheel from the sdist)"
# --no-isolation: build with the setuptools already installed (no index access needed)
python -m build --no-isolation --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
ls -l "$work/dist"

echo "+ twine check"
python -m twine check --strict "$work"/dist/*

# Deliberately without numba (a core dependency): every id must also run on the interpreted fallback of
# the compiled kernels; nor the kubernetes/prometheus clients (imported lazily by the real backends).
# pip reports the missing numba as a "dependency conflict"; that is expected here.
echo "+ fresh venv: the wheel (no deps) + gymnasium, numpy, scipy only (no numba: the interpreted fallback)"
python -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-deps "$work"/dist/*.whl
"$work/venv/bin/python" -m pip install -q gymnasium numpy scipy

echo "+ every id from the installed wheel"
cd "$work"   # not the source tree: the installed wheel must be what is imported
"$work/venv/bin/python" "$root/.ci/check_installed.py"
