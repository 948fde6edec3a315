"""The notebooks' shared conventions and their set-up cell (their content is checked by re-executing them
under nbval)."""

import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
EXPECTED = [
    "01_histogram",
    "02_discretized_logistic_mixture",
    "03_made_2d",
    "04_made_binary_images",
    "05_made_paper_reproduction",
]


def _cells(path):
    return json.loads(path.read_text())["cells"]


def _code(path):
    return [c for c in _cells(path) if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def _setup_cell():
    return "".join(_code(NOTEBOOKS[0])[0]["source"])


def test_the_notebooks_are_the_five_of_the_readme():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    readme = (ROOT / "README.md").read_text()
    assert all(f"notebooks/{name}.ipynb" in readme for name in EXPECTED)


def test_every_notebook_opens_with_the_same_setup_cell_and_none_edits_sys_path():
    setups = {"".join(_code(p)[0]["source"]) for p in NOTEBOOKS}
    assert len(setups) == 1, "the first code cells differ: keep one set-up cell, copied into every notebook"
    assert "PROJECT_URL" in (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        for cell in _code(path):
            assert "sys.path" not in "".join(cell["source"]), (
                f"{path.name}: import the installed package instead"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_executed_in_order_without_errors(path):
    counts = [c.get("execution_count") for c in _code(path)]
    assert None not in counts and counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: re-execute it top to bottom"
    )
    errors = [o for c in _code(path) for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"{path.name} has stored errors"
    assert _cells(path)[0]["cell_type"] == "markdown", f"{path.name}: open with the what and why"


# --- the Colab branch of the set-up cell, run for real ---------------------------------------------------


def _colab_kernel(tmp_path):
    """A Python that stands in for Colab's kernel: its own empty site-packages, where pip installs, and the
    packages Colab brings (torch, numpy, ...) from this environment's site-packages, read through a path
    file. The editable install of the project in this environment is not active there (its own path
    file is not processed), so `helpers` is importable only once the cell has installed it."""
    venv = tmp_path / "colab-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "colab_packages.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python, Path(site)


def _kernel_env(**extra):
    """The environment of the stand-in kernel: this one's, without a PYTHONPATH that would make the project
    importable there before the cell installs it (a shell that set one for a run of the scripts, say)."""
    env = dict(os.environ, **extra)
    env.pop("PYTHONPATH", None)
    return env


def _run_setup_cell(python, tmp_path, project_url):
    """Run the set-up cell in `python` with a stand-in google.colab module, then import helpers."""
    script = tmp_path / "kernel.py"
    script.write_text(
        textwrap.dedent("""
        import sys, types
        sys.modules["google.colab"] = types.ModuleType("google.colab")
        exec(compile(open(sys.argv[1]).read(), "set-up cell", "exec"))
        import helpers.data, helpers.models
        print("helpers from", helpers.__file__)
        print("root", root)
    """)
    )
    cell = tmp_path / "cell.py"
    cell.write_text(_setup_cell())
    workdir = tmp_path / "content"
    workdir.mkdir()
    env = _kernel_env(
        PROJECT_URL=project_url,
        COLAB_WORKDIR=str(workdir),
        PIP_NO_INDEX="1",  # nothing may be downloaded: Colab has the rest already
        PIP_NO_BUILD_ISOLATION="0",
    )  # build with this environment's setuptools (pip reads "0" as: off)
    return subprocess.run(
        [str(python), str(script), str(cell)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    ), workdir


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the project as a git repository to clone")
def test_colab_branch_clones_and_installs_the_project(tmp_path):
    python, site = _colab_kernel(tmp_path)
    probe = subprocess.run(
        [str(python), "-c", "import helpers"], cwd=tmp_path, env=_kernel_env(), capture_output=True
    )
    assert probe.returncode != 0, "helpers must not be importable before the cell runs"
    result, workdir = _run_setup_cell(python, tmp_path, ROOT.as_uri())
    assert result.returncode == 0, result.stdout + result.stderr
    clone = workdir / "made-notebooks"
    assert (clone / "notebooks").is_dir()
    assert f"helpers from {site / 'helpers' / '__init__.py'}" in result.stdout  # the installed copy
    assert f"root {clone}" in result.stdout
    installed = {
        p.name.split("-")[0] for p in site.iterdir() if not p.name.startswith(("colab_packages", "__"))
    }
    assert installed == {"helpers", "made_notebooks"}, f"pip installed more than the project: {installed}"


def test_colab_branch_with_a_wrong_address_says_what_to_set(tmp_path):
    python, _ = _colab_kernel(tmp_path)
    result, _ = _run_setup_cell(python, tmp_path, (tmp_path / "no-such-repository").as_uri())
    assert result.returncode != 0
    assert "set PROJECT_URL to the address of the project or your fork" in result.stderr


def test_local_branch_without_the_package_says_how_to_install(tmp_path):
    python, _ = _colab_kernel(tmp_path)
    cell = tmp_path / "cell.py"
    cell.write_text(_setup_cell())
    result = subprocess.run(
        [str(python), str(cell)], cwd=tmp_path, env=_kernel_env(), capture_output=True, text=True
    )
    assert result.returncode != 0 and "run `make env`" in result.stderr


def test_nbval_waits_long_enough_for_output_on_a_loaded_machine(tmp_path):
    """notebooks/conftest.py raises nbval's 5 s wait for cell output on every notebook cell it collects
    (nbval 0.11 keeps it in each item's `output_timeout`)."""
    plugin = tmp_path / "report_waits.py"
    plugin.write_text(
        "def pytest_collection_finish(session):\n"
        "    print('waits:', sorted({getattr(i, 'output_timeout', None) for i in session.items}))\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "report_waits",
            "--nbval-lax",
            str(NOTEBOOKS[0]),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    waits = result.stdout.split("waits: ")[1].splitlines()[0]
    assert min(json.loads(waits)) >= 300, waits  # every cell waits far longer than nbval's 5 s


def _printed(path):
    """Everything a committed notebook printed: its text outputs."""
    texts = []
    for cell in _code(path):
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            texts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(texts)


def test_every_number_the_readme_quotes_from_notebook_5_is_what_notebook_5_prints():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## The paper's MNIST results") :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    row = next(line for line in readme.splitlines() if line.startswith("| 05_made_paper_reproduction"))
    printed = _printed(ROOT / "notebooks" / "05_made_paper_reproduction.ipynb")
    numbers = re.findall(r"(?<![\d.])(?<!section )\d+\.\d+(?![\d.])", section + row)  # not "section 6.2"
    missing = sorted({n for n in numbers if not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", printed)})
    assert len(numbers) > 20 and not missing, (
        f"the README quotes numbers notebook 5 does not print: {missing}"
    )
