"""Generate the exercise notebooks from the solution notebooks, so that the two never drift apart:

    python notebooks/exercises/generate.py

A solution notebook is a filled exercise notebook. Its code cells tagged "exercise" hold the code the learner
writes; each such cell names, in its metadata "hints", a one-line hint for every function it defines and every
method of the classes it defines ("name" or "Class.method"). The exercise version keeps the notebook as it is,
except in those cells the body of each of those functions after its docstring, which becomes the hint and
`raise NotImplementedError`. Everything else stays, comments and magics included: the check cells after each
exercise, the training, the figures, which then run on the learner's code. A header cell says what to write,
and the set-up cell's project root moves one folder up (the exercises sit in notebooks/exercises/). Outputs
and execution counts are stripped: the exercises are for learners to run. A cell that cannot be blanked (a
function without a docstring or a hint, a hint for no function, code that does not parse) stops the
generation, naming the notebook, the cell and the function. A notebook in notebooks/exercises/ is deleted only
if this script wrote it and its solution has no exercise any more: a copy with a learner's answers stays.

tests/test_generate.py checks that the committed exercise notebooks equal a fresh generation.
"""

import ast
import copy
import io
import json
import re
import sys
import tokenize
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOLUTIONS = HERE.parent
TAG = "exercise"
ROOT_LINE = 'root = os.path.abspath("..")'
EXERCISE_ROOT_LINE = (
    'root = os.path.abspath(os.path.join("..", ".."))  # the exercise notebooks sit in notebooks/exercises/'
)
MAGIC = re.compile(
    r"^(\s*)[%!]"
)  # IPython's magics and shell escapes, where a statement starts: kept as they are
HEADER = "**Exercise version** of ["  # how the header cell of every notebook this script writes begins


class GenerationError(ValueError):
    pass


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _cell(cell_type, source, cell_id):
    cell = {"cell_type": cell_type, "id": cell_id, "metadata": {}, "source": source.splitlines(keepends=True)}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _functions(tree):
    """(name, def node) of every top-level function and every method of a top-level class, in order."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef):
            yield from (
                (f"{node.name}.{f.name}", f)
                for f in node.body
                if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
            )


def _statement_can_start(lines):
    """Whether a statement can start after `lines`: they tokenize to their end outside brackets, strings and
    backslash continuations. A line after them that starts with % or ! is then a magic, not `% 2` or `!= 3)`
    continuing an expression."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO("".join(line + "\n" for line in lines)).readline):
            pass
    except (tokenize.TokenError, SyntaxError):  # SyntaxError: IndentationError included
        return False
    return True


def _parsable(lines):
    """The lines as Python: each magic (see MAGIC) becomes `pass` at its indentation, the rest kept as a comment."""
    parsable = []
    for line in lines:
        magic = MAGIC.match(line)
        parsable.append(
            f"{magic.group(1)}pass  #{line[magic.end(1) :]}"
            if magic and _statement_can_start(parsable)
            else line
        )
    return "\n".join(parsable)


def _body_end(lines, node):
    """The 1-based last line of a function's body: its last statement's, or the last comment after that indented
    deeper than its `def` (the body's comments go with it; one at the `def`'s level or outside stays)."""
    end = node.end_lineno
    for number in range(node.end_lineno + 1, len(lines) + 1):
        line = lines[number - 1]
        if not line.strip():
            continue
        if not line.lstrip().startswith("#") or len(line) - len(line.lstrip()) <= node.col_offset:
            break
        end = number
    return end


def blank(source, hints, where):
    """`source` with the body of each function named in `hints` (after its docstring) replaced by
    `# Hint: ...` and `raise NotImplementedError`, every other line as it was; and the names of those
    functions in the order the cell defines them (not the hints' order, which a notebook editor may sort).
    Every definition of a name is blanked (a property and its setter, a function defined twice), each with
    the name's hint."""
    lines = source.split("\n")
    parsable = _parsable(lines)  # a magic parses as `pass`
    try:
        tree = ast.parse(parsable)
    except SyntaxError as error:
        raise GenerationError(
            f"{where}: the cell does not parse ({error.msg}, line {error.lineno})"
        ) from None
    definitions = list(_functions(tree))
    functions = list(dict.fromkeys(name for name, _ in definitions))  # each name once, in the cell's order
    for name in hints:
        if name not in functions:
            raise GenerationError(
                f"{where}: a hint names {name!r}, which the cell does not define (it defines "
                f"{', '.join(functions) or 'no function'}): update the cell's metadata 'hints'"
            )
    replacements = []
    for name, node in definitions:
        if name not in hints:
            raise GenerationError(
                f"{where}: {name} has no hint: add one line for it to the cell's metadata 'hints'"
            )
        if not isinstance(hints[name], str) or not hints[name].strip() or "\n" in hints[name]:
            raise GenerationError(
                f"{where}: the hint of {name} must be one line of text, got {hints[name]!r}"
            )
        first = node.body[0]
        if not (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            raise GenerationError(
                f"{where}: {name} has no docstring: say in one what it must return, since the "
                f"exercise keeps only the signature and the docstring"
            )
        if first.lineno == node.lineno:
            raise GenerationError(f"{where}: put the body of {name} on its own lines, below the `def`")
        indent = re.match(r"\s*", lines[first.lineno - 1]).group()
        body = [f"{indent}# Hint: {hints[name].strip()}", f"{indent}raise NotImplementedError"]
        replacements.append((first.end_lineno, _body_end(lines, node), body))  # 1-based: after the docstring
    for start, end, body in sorted(replacements, reverse=True):
        lines[start:end] = body
    return "\n".join(lines), functions


def exercise_notebook(name):
    """The exercise version of notebooks/<name>.ipynb as a notebook dict, without outputs."""
    path = SOLUTIONS / f"{name}.ipynb"
    notebook = json.loads(path.read_text())
    cells, written = [], []
    for i, solution in enumerate(notebook["cells"]):
        source = _source(solution)
        if TAG in solution.get("metadata", {}).get("tags", []):
            if solution["cell_type"] != "code":
                raise GenerationError(f"{path.name}, cell {i}: only code cells can be exercises")
            hints = solution["metadata"].get("hints", {})
            source, names = blank(source, hints, f"{path.name}, cell {i}")
            written += names
            source = f"# Exercise: write {', '.join(f'`{n}`' for n in names)}.\n" + source
        elif ROOT_LINE in source:
            source = source.replace(ROOT_LINE, EXERCISE_ROOT_LINE)
        cells.append(_cell(solution["cell_type"], source, None))
    if not written:
        raise GenerationError(f"{path.name}: no cell is tagged {TAG!r}, so there is nothing to write")
    cells.insert(
        1,
        _cell(
            "markdown",
            (
                f"{HEADER}{name}](../{name}.ipynb), generated from it by `notebooks/exercises/generate.py` "
                f"(edit the solution notebook, then run that script; never edit this notebook). Write the bodies of "
                f"{', '.join(f'`{n}`' for n in written)} in the cells marked `# Exercise`, replacing each "
                f"`raise NotImplementedError`, then run the check cells below each: they print what they verified, or "
                f"say what is wrong and why. Everything after them runs on your code."
            ),
            None,
        ),
    )
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"  # nbformat 4.5 wants ids; stable ones keep regenerations byte-identical
    metadata = {k: v for k, v in notebook["metadata"].items() if k in ("kernelspec", "language_info")}
    return {
        "cells": cells,
        "metadata": copy.deepcopy(metadata),
        "nbformat": notebook["nbformat"],
        "nbformat_minor": notebook["nbformat_minor"],
    }


def solutions_with_exercises():
    """The names of the solution notebooks that have exercise cells."""
    return [
        p.stem
        for p in sorted(SOLUTIONS.glob("[0-9]*.ipynb"))
        if any(TAG in c.get("metadata", {}).get("tags", []) for c in json.loads(p.read_text())["cells"])
    ]


def write(notebook, path):
    Path(path).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def written_here(path):
    """Whether notebooks/exercises/<path> is an exercise this script wrote: its header cell is the script's and
    its solution notebook exists. A Jupyter "Duplicate" (01_histogram-Copy1.ipynb, with a learner's answers in
    it) has the header but no solution of its name; a learner's own notebook has neither."""
    try:
        cells = json.loads(path.read_text())["cells"]
        header = "".join(cells[1]["source"])
    except (ValueError, KeyError, IndexError, TypeError):
        return False
    return header.startswith(HEADER) and (SOLUTIONS / path.name).exists()


def main():
    names = solutions_with_exercises()
    for stale in sorted(set(p.stem for p in HERE.glob("*.ipynb")) - set(names)):
        path = HERE / f"{stale}.ipynb"
        if written_here(path):
            path.unlink()  # its solution has no exercise any more
            print(f"removed notebooks/exercises/{stale}.ipynb")
        else:
            print(f"kept notebooks/exercises/{stale}.ipynb: not written by generate.py (never deleted)")
    for name in names:
        write(exercise_notebook(name), HERE / f"{name}.ipynb")
        print(f"wrote notebooks/exercises/{name}.ipynb")


if __name__ == "__main__":
    try:
        main()
    except GenerationError as err:
        sys.exit(f"generate.py: {err}")
