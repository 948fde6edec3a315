"""The package's structure holds: no module outside helpers/models (tests included) nor any notebook reaches into
MADE's private names, nothing edits sys.path, and the code is formatted and linted by ruff as configured."""

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.models import made, masks, sampling

ROOT = Path(__file__).resolve().parent.parent
PYTHON_FILES = [
    p
    for folder in ("helpers", "experiments", "bench", "tests", "notebooks")
    for p in (ROOT / folder).rglob("*.py")
]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))


def private_names():
    """The private names MADE's modules define (methods, functions, module constants), except dunders and those
    torch's nn.Module defines (such as _load_from_state_dict, which MADE overrides for torch to call)."""
    torch_names = {name for name in dir(made.nn.Module) if name.startswith("_")}
    names = {name for name, _ in inspect.getmembers(made.MADE) if name.startswith("_")} - torch_names
    for module in (made, masks, sampling):
        names |= {name for name in vars(module) if name.startswith("_")}
    return {name for name in names if not name.startswith("__")}


def test_private_names_of_made_are_used_only_inside_helpers_models():
    names = private_names()
    assert {"_build_masks", "_mixture_log_prob"} <= names, "the scan must see MADE's private methods"
    pattern = re.compile(r"\b(" + "|".join(sorted(names)) + r")\b")
    outside = [
        p
        for p in PYTHON_FILES
        if ROOT / "helpers" / "models" not in p.parents and p != Path(__file__).resolve()
    ] + NOTEBOOKS
    uses = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in outside for m in pattern.finditer(p.read_text())]
    assert uses == [], "use MADE's public names (encode, log_likelihoods, masked_layers, ...) instead"


def test_nothing_edits_sys_path():
    edit = re.compile(r"sys\.path\s*(\.\s*(insert|append|extend|remove)\b|\[|\+?=)")
    edits = [str(p.relative_to(ROOT)) for p in PYTHON_FILES + NOTEBOOKS if edit.search(p.read_text())]
    assert edits == [], "import the installed package (and run the experiments as python -m experiments.NAME)"


RUFF = shutil.which(
    "ruff", path=str(Path(sys.executable).parent)
)  # the environment's, pinned in requirements.txt


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]], ids=["format", "lint"])
def test_the_code_is_formatted_and_linted_by_ruff(command):
    assert RUFF is not None, "ruff is missing from the environment: run make env (requirements.txt pins it)"
    result = subprocess.run([RUFF, *command, "."], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, (
        f"ruff {' '.join(command)}: run `ruff format .` and `ruff check --fix .`\n"
        f"{result.stdout[-3000:]}{result.stderr[-1000:]}"
    )
