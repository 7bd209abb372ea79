"""What the wheel ships, checked fast from pyproject.toml (the full build + fresh-venv install of every
id is .ci/check_packaging.sh, run by .ci/run: about 45 s, too slow for the suite's budget)."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lwmecps_gym", "faas_gym", "marllb_env")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("package", PACKAGES)
def test_every_data_file_matches_package_data(package):
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"].get("namespaces", True)
    patterns = list(PYPROJECT["tool"]["setuptools"]["package-data"]["*"])
    missed = []
    for path in (ROOT / package).rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in {".py", ".pyc", ".so", ".c"}:
            continue
        # [tool.setuptools.packages.find] finds namespace packages too, so every directory is a
        # package and its files are matched by name
        if not any(fnmatch.fnmatch(path.name, p) for p in patterns):
            missed.append(str(path.relative_to(ROOT)))
    assert not missed, f"not matched by [tool.setuptools.package-data], so not in the wheel: {missed}"


@pytest.mark.parametrize("folder", ["lwmecps_gym/scenarios/data", "faas_gym/data/orcbench", "marllb_env/data"])
def test_each_shipped_data_set_has_its_licence(folder):
    names = {p.name for p in (ROOT / folder).iterdir()}
    assert "LICENSE" in names and "README.md" in names, f"{folder}: {sorted(names)}"
    assert any(n.endswith((".csv", ".json")) for n in names)


def test_all_extra_covers_every_extra():
    extras = PYPROJECT["project"]["optional-dependencies"]
    (spec,) = extras["all"]
    inside = set(spec.split("[", 1)[1].rstrip("]").split(","))
    assert inside == set(extras) - {"all"}
