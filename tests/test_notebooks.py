"""The notebooks' shared conventions (their content is checked by re-executing them under nbval)."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _code(path):
    return [c for c in _cells(path) if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


def test_every_notebook_opens_with_the_same_setup_cell():
    setups = {"".join(_code(p)[0]["source"]) for p in NOTEBOOKS}
    assert len(setups) == 1, "the first code cells differ: keep one set-up cell, copied into every notebook"
    setup = setups.pop()
    assert "PROJECT_URL" in setup and "google.colab" in setup and "sys.path.insert" in setup
    assert "PROJECT_URL" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_in_order_without_errors(path):
    counts = [c.get("execution_count") for c in _code(path)]
    assert None not in counts and counts == sorted(counts), f"{path.name}: re-execute it top to bottom"
    errors = [o for c in _code(path) for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"{path.name} has stored errors"
    assert _cells(path)[0]["cell_type"] == "markdown", f"{path.name}: open with the what and why"
