"""Run a snippet compiled and interpreted: the compiled kernels' one-source check."""

from __future__ import annotations

import os
import subprocess
import sys


def compiled_and_interpreted_outputs(code: str) -> tuple[str, str]:
    """Standard output of ``python -c code`` with numba compiling (``NUMBA_DISABLE_JIT=0``) and with
    the same kernels run as plain Python (``NUMBA_DISABLE_JIT=1``), in fresh processes."""
    runs = [
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                       env={**os.environ, "NUMBA_DISABLE_JIT": flag}).stdout
        for flag in ("0", "1")
    ]
    return runs[0], runs[1]
