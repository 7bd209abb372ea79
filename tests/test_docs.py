"""Docs hygiene the block runner cannot see (the Python blocks themselves run as tests through
pytest-markdown-docs, see conftest.py; the site builds with ``mkdocs build --strict`` in .ci/run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_install_instructions_are_from_a_clone_or_a_wheel(page):
    # the distribution is not on a package index: `pip install lwmecps-gym[...]` would fail
    text = page.read_text()
    bad = re.findall(r"pip install [\"']?lwmecps-gym", text)
    assert not bad, f"{page.name}: {bad}; install from a clone: pip install -e \".[extra]\""


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_python_blocks_are_collected(page):
    # only ```python / ```py / ```python3 fences run; another spelling of Python would silently not
    fences = re.findall(r"^\s*```(\S*)", page.read_text(), flags=re.MULTILINE)
    odd = [f for f in fences if f.lower() in {"python", "py", "python3", "pycon"} and f not in {"python", "py", "python3"}]
    assert not odd, f"{page.name}: code fences {odd} are not run by the suite; use ```python"
    assert "notest" not in " ".join(fences), f"{page.name}: use '# needs: <system>' (conftest.py), not notest"


def test_every_docs_page_is_in_the_site_navigation():
    yaml = pytest.importorskip("yaml")
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for x in node:
                yield from pages(x)
        elif isinstance(node, dict):
            for x in node.values():
                yield from pages(x)

    listed = set(pages(nav))
    on_disk = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert on_disk <= listed, f"docs pages missing from mkdocs.yml nav: {sorted(on_disk - listed)}"
