"""The exercise generator (notebooks/exercises/generate.py): the committed exercise notebooks are a fresh
generation of the solution notebooks; a blanked cell keeps everything but the bodies of its functions; what
cannot be blanked stops the generation with a message naming the cell and the function."""
import importlib.util
import json
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("generate", ROOT / "notebooks" / "exercises" / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)
NAMES = generate.solutions_with_exercises()


def test_notebooks_1_to_4_have_exercises_and_no_other_exercise_notebook_is_committed():
    assert NAMES == ["01_histogram", "02_discretized_logistic_mixture", "03_made_2d", "04_made_binary_images"]
    assert sorted(p.stem for p in (ROOT / "notebooks" / "exercises").glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_exercises_are_a_fresh_generation_without_outputs(name):
    committed = json.loads((ROOT / "notebooks" / "exercises" / f"{name}.ipynb").read_text())
    assert committed == json.loads(json.dumps(generate.exercise_notebook(name))), \
        f"notebooks/exercises/{name}.ipynb is stale: run `python notebooks/exercises/generate.py`"
    code = [c for c in committed["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), f"{name}: strip its outputs"


@pytest.mark.parametrize("name", NAMES)
def test_a_solution_is_its_exercise_filled_in(name):
    """Cell for cell, the exercise differs from the solution only in blanked cells (and the header and the set-up
    cell's root), and a blanked cell raises NotImplementedError once per hinted function."""
    solution = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    exercise = generate.exercise_notebook(name)["cells"]
    assert len(exercise) == len(solution) + 1 and exercise[1]["source"][0].startswith("**Exercise version**")
    for cell, original in zip(exercise[:1] + exercise[2:], solution):
        source, original_source = "".join(cell["source"]), "".join(original["source"])
        if generate.TAG in original["metadata"].get("tags", []):
            hints = original["metadata"]["hints"]
            assert source.count("raise NotImplementedError") == len(hints)
            compile(source.replace("%", "#"), name, "exec")
        elif generate.ROOT_LINE in original_source:
            assert source == original_source.replace(generate.ROOT_LINE, generate.EXERCISE_ROOT_LINE)
        else:
            assert source == original_source


CELL = textwrap.dedent('''\
    %matplotlib inline
    import torch  # kept


    def f(x):
        """Twice x."""
        # a solution comment, blanked with the body
        return 2 * x


    class Model(torch.nn.Module):
        """A model."""
        scale = 3   # class attributes stay

        def forward(self, x):
            """Scaled x."""
            return self.scale * x
    # a comment after the code stays
    !echo shell escapes stay too
    ''')


def test_blanking_keeps_magics_comments_signatures_and_docstrings():
    blanked, names = generate.blank(CELL, {"Model.forward": "multiply by self.scale", "f": "double it"}, "cell")
    assert names == ["f", "Model.forward"]   # in the cell's order, whatever the order of the hints
    assert blanked == textwrap.dedent('''\
        %matplotlib inline
        import torch  # kept


        def f(x):
            """Twice x."""
            # Hint: double it
            raise NotImplementedError


        class Model(torch.nn.Module):
            """A model."""
            scale = 3   # class attributes stay

            def forward(self, x):
                """Scaled x."""
                # Hint: multiply by self.scale
                raise NotImplementedError
        # a comment after the code stays
        !echo shell escapes stay too
        ''')


@pytest.mark.parametrize("source, hints, message", [
    (CELL, {"f": "h"}, r"cell: Model.forward has no hint"),
    (CELL, {"f": "h", "Model.forward": "h", "g": "h"}, r"a hint names 'g', which the cell does not define"),
    (CELL, {"f": "two\nlines", "Model.forward": "h"}, r"the hint of f must be one line"),
    ("def f(x):\n    return x\n", {"f": "h"}, r"f has no docstring"),
    ('def f(x): """doc"""\n', {"f": "h"}, r"put the body of f on its own lines"),
    ("def f(x:\n", {"f": "h"}, r"the cell does not parse"),
])
def test_what_cannot_be_blanked_is_named(source, hints, message):
    with pytest.raises(generate.GenerationError, match=message):
        generate.blank(source, hints, "cell")
