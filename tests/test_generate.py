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
    assert committed == json.loads(json.dumps(generate.exercise_notebook(name))), (
        f"notebooks/exercises/{name}.ipynb is stale: run `python notebooks/exercises/generate.py`"
    )
    code = [c for c in committed["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), (
        f"{name}: strip its outputs"
    )


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
    blanked, names = generate.blank(
        CELL, {"Model.forward": "multiply by self.scale", "f": "double it"}, "cell"
    )
    assert names == ["f", "Model.forward"]  # in the cell's order, whatever the order of the hints
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


@pytest.mark.parametrize(
    "source, hints, message",
    [
        (CELL, {"f": "h"}, r"cell: Model.forward has no hint"),
        (
            CELL,
            {"f": "h", "Model.forward": "h", "g": "h"},
            r"a hint names 'g', which the cell does not define",
        ),
        (CELL, {"f": "two\nlines", "Model.forward": "h"}, r"the hint of f must be one line"),
        ("def f(x):\n    return x\n", {"f": "h"}, r"f has no docstring"),
        ('def f(x): """doc"""\n', {"f": "h"}, r"put the body of f on its own lines"),
        ("def f(x:\n", {"f": "h"}, r"the cell does not parse"),
    ],
)
def test_what_cannot_be_blanked_is_named(source, hints, message):
    with pytest.raises(generate.GenerationError, match=message):
        generate.blank(source, hints, "cell")


# --- issue 44 -------------------------------------------------------------------------------------------


def test_every_definition_of_a_name_is_blanked_not_only_the_last():
    """A property and its setter, or a function defined twice: the first body (a solution) must not ship."""
    source = textwrap.dedent('''\
        class Model:
            """A model."""

            @property
            def scale(self):
                """The scale."""
                return self._scale * 2   # the getter's solution

            @scale.setter
            def scale(self, value):
                """Set the scale."""
                self._scale = value


        def f(x):
            """A first draft."""
            return x + 1   # the draft's solution


        def f(x):
            """Twice x."""
            return 2 * x
        ''')
    blanked, names = generate.blank(source, {"Model.scale": "store it", "f": "double it"}, "cell")
    assert names == ["Model.scale", "f"]
    assert "solution" not in blanked and "self._scale" not in blanked and "2 * x" not in blanked
    assert blanked.count("raise NotImplementedError") == 4 and blanked.count("@scale.setter") == 1


def test_continuation_lines_starting_with_percent_or_bang_are_code_not_magics():
    source = textwrap.dedent('''\
        %matplotlib inline
        TEXT = """
        %d items
        """


        def odd_but_not_3(x):
            """Whether x is odd and not 3."""
            return (x
                    % 2 == 1 and x
                    != 3)
        ''')
    blanked, names = generate.blank(source, {"odd_but_not_3": "two conditions"}, "cell")
    assert blanked.splitlines()[:4] == source.splitlines()[:4] and "% 2" not in blanked
    assert blanked.splitlines()[-2:] == ["    # Hint: two conditions", "    raise NotImplementedError"]


def test_comments_after_a_functions_last_statement_are_blanked_with_its_body():
    source = textwrap.dedent('''\
        def f(x):
            """Twice x."""
            return 2 * x
            # the solution's note, after its last statement

                # and a deeper one
        # a comment after the function stays
        ''')
    blanked, _ = generate.blank(source, {"f": "double it"}, "cell")
    assert blanked == textwrap.dedent('''\
        def f(x):
            """Twice x."""
            # Hint: double it
            raise NotImplementedError
        # a comment after the function stays
        ''')


def test_the_generator_deletes_only_stale_notebooks_it_wrote(tmp_path, monkeypatch, capsys):
    """A Jupyter "Duplicate" of an exercise, holding a learner's answers, and a learner's own notebook stay; a
    generated exercise whose solution notebook has no exercise any more goes."""
    monkeypatch.setattr(generate, "HERE", tmp_path)
    generated = generate.exercise_notebook("01_histogram")
    copy = dict(generated, cells=generated["cells"] + [generate._cell("code", "answer = 42\n", "cell-x")])
    generate.write(copy, tmp_path / "01_histogram-Copy1.ipynb")
    generate.write(dict(generated, cells=generated["cells"][2:]), tmp_path / "my_notes.ipynb")
    stale = dict(generated, cells=generated["cells"][:2])  # as generated from a notebook that had exercises
    generate.write(stale, tmp_path / "05_made_paper_reproduction.ipynb")
    generate.main()
    assert sorted(p.stem for p in tmp_path.glob("*.ipynb")) == sorted(
        NAMES + ["01_histogram-Copy1", "my_notes"]
    )
    assert json.loads((tmp_path / "01_histogram-Copy1.ipynb").read_text()) == json.loads(json.dumps(copy))
    out = capsys.readouterr().out
    assert "removed notebooks/exercises/05_made_paper_reproduction.ipynb" in out
    assert "kept notebooks/exercises/01_histogram-Copy1.ipynb: not written by generate.py" in out


# --- issue 41: hints teach without giving the code --------------------------------------------------------------


def _squeezed(text):
    return "".join(text.split())


def solution_lines_in_hints(source, hints):
    """(function, line) for each line of a hinted function's solution body (after its docstring) that its hint
    contains, whitespace ignored; lines of fewer than 12 characters without spaces (`return x`, `)`, `pass`) are too
    trivial to count."""
    tree = generate.ast.parse(generate._parsable(source.split("\n")))
    lines = source.split("\n")
    found = []
    for name, node in generate._functions(tree):
        hint = _squeezed(hints.get(name, ""))
        body = lines[node.body[0].end_lineno : generate._body_end(lines, node)]
        for line in body:
            code = _squeezed(line.split("#")[0])
            if len(code) >= 12 and code in hint:
                found.append((name, line.strip()))
    return found


def test_a_hint_holding_a_line_of_its_solution_is_found_and_a_description_is_not():
    source = 'def f(logits, x):\n    """Doc."""\n    total = torch.logsumexp(logits, 0)\n    return logits[x] - total\n'
    assert solution_lines_in_hints(source, {"f": "subtract total=torch.logsumexp( logits,0 ) from θ_x"}) == [
        ("f", "total = torch.logsumexp(logits, 0)")
    ]
    assert (
        solution_lines_in_hints(source, {"f": "log p(x) = θ_x − logsumexp(θ), computed in log space"}) == []
    )


@pytest.mark.parametrize("name", NAMES)
def test_no_hint_holds_a_line_of_its_functions_solution(name):
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    found = [
        (i, function, line)
        for i, cell in enumerate(cells)
        if generate.TAG in cell["metadata"].get("tags", [])
        for function, line in solution_lines_in_hints("".join(cell["source"]), cell["metadata"]["hints"])
    ]
    assert found == [], f"{name}: these hints hold a line of their solution (cell, function, line): {found}"


def test_notebook_3s_blanks_are_the_homeworks_made_and_its_answer():
    """The learner writes the masks, the masked layer, the model's forward pass, log-likelihood and sampler, and q2_a,
    each exercise cell followed by a cell calling its check."""
    cells = json.loads((ROOT / "notebooks" / "03_made_2d.ipynb").read_text())["cells"]
    blanks = {
        i: set(cell["metadata"]["hints"])
        for i, cell in enumerate(cells)
        if generate.TAG in cell["metadata"].get("tags", [])
    }
    assert set().union(*blanks.values()) == {
        "connectivity_numbers",
        "masks_from_numbers",
        "MaskedLinear.__init__",
        "MaskedLinear.forward",
        "OneHotMADE.__init__",
        "OneHotMADE.forward",
        "OneHotMADE.log_prob",
        "OneHotMADE.sample",
        "q2_a",
    }
    checks = {
        "connectivity_numbers": "check_connectivity_numbers(connectivity_numbers)",
        "masks_from_numbers": "check_masks_from_numbers(masks_from_numbers)",
        "MaskedLinear": "check_masked_linear(MaskedLinear)",
        "OneHotMADE": "check_one_hot_made(OneHotMADE",
        "q2_a": "check_q2_a(q2_a)",
    }
    for i, names in blanks.items():
        following = "".join(cells[i + 1]["source"])
        for name in {n.split(".")[0] for n in names}:
            assert checks[name] in following, (
                f"cell {i + 1} should check {name} right after its exercise cell"
            )


def test_notebook_4s_blanks_are_the_homeworks_binary_made_its_sampler_and_its_answer():
    """The learner writes the Bernoulli log-likelihood, the direct mask, the plain BinaryMADE, the sampler (the draw
    included) and q2_b, each exercise cell followed by a cell calling its check; no solution calls the package's
    draw or its samplers."""
    cells = json.loads((ROOT / "notebooks" / "04_made_binary_images.ipynb").read_text())["cells"]
    blanks = {
        i: set(cell["metadata"]["hints"])
        for i, cell in enumerate(cells)
        if generate.TAG in cell["metadata"].get("tags", [])
    }
    assert set().union(*blanks.values()) == {
        "bernoulli_log_prob",
        "direct_mask",
        "BinaryMADE.__init__",
        "BinaryMADE.forward",
        "BinaryMADE.log_prob",
        "sample_plain",
        "q2_b",
    }
    checks = {
        "bernoulli_log_prob": "check_bernoulli_log_prob(bernoulli_log_prob)",
        "direct_mask": "check_direct_mask(direct_mask)",
        "BinaryMADE": "check_binary_made(BinaryMADE)",
        "sample_plain": "check_sample_plain(sample_plain)",
        "q2_b": "check_q2_b(q2_b)",
    }
    for i, names in blanks.items():
        following = "".join(cells[i + 1]["source"])
        for name in {n.split(".")[0] for n in names}:
            assert checks[name] in following, (
                f"cell {i + 1} should check {name} right after its exercise cell"
            )
        solution = "".join(cells[i]["source"])
        for package_sampler in ("draw_categories", ".sample(", "sample_fast", "sampling."):
            assert package_sampler not in solution, f"exercise cell {i} calls the package's {package_sampler}"
