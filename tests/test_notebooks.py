"""The example notebooks (examples/notebooks/) run headless and show their figures inline; git holds
them without outputs."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
#: notebook -> (a policy row of its table, the rendered frame's (width, height) in pixels)
EXPECT = {
    "faas_gym.ipynb": ("| hpa |", (960, 720)),
    "lwmecps_gym.ipynb": ("| proportional |", None),
    "marllb_env.ipynb": ("| SED |", (960, 720)),
}


def test_every_family_has_a_notebook():
    assert {p.name for p in NOTEBOOKS} == set(EXPECT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code), (
        f"{path.name} has outputs: strip them (jupyter nbconvert --clear-output --inplace {path.name})"
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_shows_figures_inline(path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    from PIL import Image

    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [Image.open(io.BytesIO(base64.b64decode(o.data["image/png"])))
              for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the rendered frame and the comparison plot must both show inline"
    row, frame_size = EXPECT[path.name]
    texts = [o.data.get("text/markdown", "") for o in outputs if "data" in o]
    assert any(row in t for t in texts), f"no table row {row!r} in the outputs"
    if frame_size is not None:
        assert images[0].size == frame_size
    # the comparison plot: a Figure returned by plot_comparison, displayed once
    assert images[-1].size != images[0].size or frame_size is None
