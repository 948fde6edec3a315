"""Generate the exercise notebooks from the solution notebooks, so that the two never drift apart:

    python notebooks/exercises/generate.py

For each of notebooks 1-4, the cells that show the solution of an exercise are found by an anchor, a substring of
their source that must occur in exactly one cell, and replaced by: a markdown cell saying what to write, a stub of
the function with a hint, the check of helpers/exercises.py, and the cell that plugs the learner's function into
the package's model. A few long training runs that do not add to what the exercises test are shortened the same
way (see SPEC), and said so in the notebook. Outputs and execution counts are stripped: the exercises are for
learners to run. A missing or ambiguous anchor stops the generation, naming the notebook and the anchor.

tests/test_exercises.py checks that the committed exercise notebooks equal a fresh generation, and executes them
with the package's own functions filled into the stubs (`filled=True`).
"""
import copy
import dataclasses
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOLUTIONS = HERE.parent


@dataclasses.dataclass(frozen=True)
class Stub:
    """A code cell defining the learner's function `name`; filled in with the package's own by the tests."""
    name: str
    source: str


@dataclasses.dataclass(frozen=True)
class Replace:
    """The one cell whose source contains `anchor` becomes `cells`: (cell type, source) pairs or Stubs."""
    anchor: str
    cells: tuple


@dataclasses.dataclass(frozen=True)
class ReplaceLine:
    """In the one cell containing `anchor`, the one line containing it becomes `line`, indented as it was."""
    anchor: str
    line: str


def md(source):
    return ("markdown", source)


def code(source):
    return ("code", source)


def check(*names):
    return code("from helpers.exercises import " + ", ".join(f"check_{n}" for n in names) + "\n\n"
                + "\n".join(f"check_{n}({n})" for n in names))


def header(solution, exercises, skipped=""):
    return md(f"**Exercise version** of [{solution}](../{solution}.ipynb), generated from it by "
              f"`notebooks/exercises/generate.py` (edit that script, not this notebook). Write "
              f"{exercises} where a cell says **Exercise**, then run the check cell below it: it prints one line "
              f"saying what it verified, or says what is wrong and why. Everything after runs on your "
              f"function{'s' if ' and ' in exercises else ''}: training, plots and the notebook's own checks."
              f"{skipped}")


# The exercise notebooks sit one folder below the solutions, so the set-up cell's project root is one level up more.
ROOT_LINE = ReplaceLine('root = os.path.abspath("..")',
                        'root = os.path.abspath(os.path.join("..", ".."))  # the exercise notebooks sit in '
                        'notebooks/exercises/')

SPEC = {
    "01_histogram": [
        header("01_histogram", "`histogram_log_prob`"),
        ROOT_LINE,
        Replace("print(inspect.getsource(Histogram))", (
            md("### Exercise: the histogram's log-probability\n\n"
               "Write `histogram_log_prob(logits, x)`: for a long tensor `x` of categories (any shape) and the logits "
               "$\\theta \\in \\mathbb{R}^d$, return $\\log p_\\theta(x) = \\theta_x - \\log \\sum_k e^{\\theta_k}$, a "
               "tensor of `x`'s shape. `Histogram.log_prob` calls it, and `loss` and `distribution()` call "
               "`log_prob`. Compute it in log space: $e^{\\theta}$ overflows float32 above $\\theta \\approx 88$."),
            Stub("histogram_log_prob",
                 'import torch\n\n\n'
                 'def histogram_log_prob(logits, x):\n'
                 '    """log softmax(logits)_x for each category in x (a long tensor, any shape); logits: a tensor (d,)."""\n'
                 '    # Hint: normalize over the d categories first (torch.log_softmax, along the logits\' axis), then index by x.\n'
                 '    raise NotImplementedError'),
            check("histogram_log_prob"),
            code("# From here on, every Histogram in this notebook is the package's, computing log p with your function.\n"
                 "import helpers.models\n\n\n"
                 "class Histogram(helpers.models.Histogram):\n"
                 "    def __init__(self, d):\n"
                 "        super().__init__(d, log_prob_from_logits=histogram_log_prob)"))),
    ],
    "02_discretized_logistic_mixture": [
        header("02_discretized_logistic_mixture", "`weighted_component_log_probs`"),
        ROOT_LINE,
        Replace("The model in code, from the package: its 12 parameters", ()),   # introduces the code replaced below
        Replace("print(inspect.getsource(DiscretizedLogisticMixture.weighted_component_log_probs))", (
            md("### Exercise: the mixture's log-probability, edge bins and stability included\n\n"
               "Write `weighted_component_log_probs(x, logits, means, log_scales, d)`: for a long tensor `x` of "
               "categories (any shape) and the parameters of $K$ components (tensors of shape $(K,)$), return "
               "$\\log \\pi_i + \\log p_i(x)$ for every $x$ and component $i$, a tensor `(*x.shape, K)`, where "
               "$p_i(x) = \\sigma\\big((x + 0.5 - \\mu_i)/s_i\\big) - \\sigma\\big((x - 0.5 - \\mu_i)/s_i\\big)$ with "
               "$s_i = e^{\\text{log\\_scales}_i}$, and the edge bins stretched: $x - 0.5$ becomes $-\\infty$ at "
               "$x = 0$, $x + 0.5$ becomes $+\\infty$ at $x = d - 1$. The model combines the components with a "
               "`logsumexp` over the last axis. The check evaluates it at a scale of $10^{-4}$, far in the "
               "components' tails, where a plain difference of sigmoids is $0$: use the identity above."),
            Stub("weighted_component_log_probs",
                 'import torch\n'
                 'import torch.nn.functional as F\n\n\n'
                 'def weighted_component_log_probs(x, logits, means, log_scales, d):\n'
                 '    """log π_i + log p_i(x) for each category in x (a long tensor, any shape) and each component i: a tensor\n'
                 '    (*x.shape, K). logits, means, log_scales: tensors (K,); π = softmax(logits); d: the number of categories."""\n'
                 '    # Hints: compare x[..., None] with the (K,) parameters by broadcasting; F.logsigmoid and torch.expm1 work\n'
                 '    # in log space; torch.where picks the edge bins\' formula at x = 0 and x = d - 1.\n'
                 '    raise NotImplementedError'),
            check("weighted_component_log_probs"),
            code("# From here on, every DiscretizedLogisticMixture in this notebook is the package's, with your function.\n"
                 "import helpers.models\n\n\n"
                 "class DiscretizedLogisticMixture(helpers.models.DiscretizedLogisticMixture):\n"
                 "    def __init__(self, d, n_components=4):\n"
                 "        super().__init__(d, n_components, weighted_component_log_probs=weighted_component_log_probs)"))),
    ],
    "03_made_2d": [
        header("03_made_2d", "`connectivity_numbers` and `masks_from_numbers`"),
        ROOT_LINE,
        Replace("print(inspect.getsource(connectivity_numbers))", (
            md("### Exercise: MADE's connectivity numbers and masks\n\n"
               "Write the two functions. `connectivity_numbers(ordering, hidden_sizes, generator)` returns "
               "$[m^0, m^1, \\dots, m^L]$: $m^0_i$ is the position $1..D$ of dimension $i$ in `ordering` (a "
               "permutation of `range(D)`), and hidden layer $l$'s numbers are drawn uniformly in "
               "$[\\min m^{l-1}, D - 1]$ with `generator`. `masks_from_numbers(numbers)` returns the $L + 1$ masks, "
               "0/1 tensors of shape (out, in): $m^l_k \\ge m^{l-1}_j$ between hidden layers (and from the inputs), "
               "$m^0_i > m^L_j$ into the outputs. Every MADE built after the check uses them."),
            Stub("connectivity_numbers",
                 'def connectivity_numbers(ordering, hidden_sizes, generator=None):\n'
                 '    """[m0, m1, ..., mL] as long tensors: m0[i] is the position (1..D) of dimension i in ordering; hidden\n'
                 '    layer l\'s numbers are drawn uniformly in [min(m_{l-1}), D - 1] with generator."""\n'
                 '    # Hints: torch.as_tensor(ordering).argsort() gives each dimension\'s position counted from 0;\n'
                 '    # torch.randint(low, high, (size,), generator=generator) draws from low to high - 1.\n'
                 '    raise NotImplementedError'),
            Stub("masks_from_numbers",
                 'def masks_from_numbers(numbers):\n'
                 '    """The L + 1 masks (out, in) of numbers [m0, m1, ..., mL]: m_out >= m_in up to the last hidden layer,\n'
                 '    m0 > m_L (strictly) into the outputs. With numbers [m0] alone, one mask: inputs to outputs."""\n'
                 '    # Hint: m_out[:, None] >= m_in[None, :] compares every pair of units at once.\n'
                 '    raise NotImplementedError'),
            check("connectivity_numbers", "masks_from_numbers"),
            code("# From here on, every MADE in this notebook is the package's, with masks made by your two functions.\n"
                 "import helpers.models\n\n\n"
                 "class MADE(helpers.models.MADE):\n"
                 "    def __init__(self, *args, **kwargs):\n"
                 "        super().__init__(*args, connectivity_numbers=connectivity_numbers,\n"
                 "                         masks_from_numbers=masks_from_numbers, **kwargs)"))),
    ],
    "04_made_binary_images": [
        header("04_made_binary_images", "`bernoulli_log_prob` and `sample_plain`",
               " To keep the exercise quick, it skips the comparison of direct connections and trains MNIST and "
               "Shapes once each with the learning rates the solution chose on validation (about 5 minutes on a "
               "CPU instead of 13)."),
        ROOT_LINE,
        Replace("print(inspect.getsource(MADE.log_prob))", (
            md("### Exercise: the Bernoulli log-likelihood\n\n"
               "Write `bernoulli_log_prob(logits, x)`: for logits $\\ell$ (a float tensor) and bits $x$ (a long "
               "tensor of the same shape), return $x \\log \\sigma(\\ell) + (1 - x) \\log(1 - \\sigma(\\ell))$ "
               "elementwise; the model sums it over the pixels of each image. A trained MADE is confident: "
               "its logits reach $\\pm 100$, where $\\sigma(\\ell)$ rounds to 0 or 1 in float32, so compute it "
               "without forming $\\sigma(\\ell)$."),
            Stub("bernoulli_log_prob",
                 'import torch.nn.functional as F\n\n\n'
                 'def bernoulli_log_prob(logits, x):\n'
                 '    """log p(x_i | x_<i) = x log σ(ℓ) + (1 − x) log(1 − σ(ℓ)) of every bit, a tensor of the logits\' shape."""\n'
                 '    # Hints: F.logsigmoid(l) = log σ(l), computed stably; 1 − σ(l) = σ(−l).\n'
                 '    raise NotImplementedError'),
            check("bernoulli_log_prob"),
            code("# From here on, every MADE in this notebook is the package's, with your likelihood of binary data.\n"
                 "import helpers.models\n\n\n"
                 "class MADE(helpers.models.MADE):\n"
                 "    def __init__(self, *args, **kwargs):\n"
                 "        super().__init__(*args, bernoulli_log_prob=bernoulli_log_prob, **kwargs)"))),
        Replace("ablation[direct] = fit(", (
            md("*Exercise version: the comparison is skipped (6 epochs of MNIST that do not use your functions in a "
               "new way); the solution notebook runs it, and the next paragraph quotes its result.*"),)),
        ReplaceLine("chosen = select(make_mnist_model",
                    'chosen = {"lr": 1e-3}   # exercise version: the solution\'s choice on validation (its selection '
                    'takes 6 minutes)'),
        Replace("print(inspect.getsource(MADE._sample_plain))", (
            md("### Exercise: the D-pass sampler\n\n"
               "Write `sample_plain(model, u, mask_id, given, known)`: start from $x = 0$ and, for each dimension in "
               "the mask's ordering `model.orderings[mask_id]`, run the network on the current $x$, read that "
               "dimension's logits and draw it with its uniform `u[:, dim]`, or copy `given[:, dim]` if "
               "`known[dim]`. The check compares your samples with the model's distribution on a tiny MADE (a "
               "chi-square test), and with the package's from the same uniforms; the cell after it compares them "
               "with the fast sampler on the trained MNIST model."),
            Stub("sample_plain",
                 'def sample_plain(model, u, mask_id, given, known):\n'
                 '    """Samples (n, D), a long tensor, drawn one dimension at a time in the ordering of mask mask_id, one\n'
                 '    forward pass each. u: uniforms (n, D), u[:, dim] drives dimension dim; known[dim] True: copy given[:, dim]."""\n'
                 '    # Hints: x = torch.zeros(u.shape, dtype=torch.long, device=u.device); model(x, mask_id) gives the logits\n'
                 '    # of every dimension; model._categories(logits[:, dim], u[:, dim]) draws by inverse CDF.\n'
                 '    raise NotImplementedError'),
            check("sample_plain"))),
        ReplaceLine('method="plain")', 'plain = mnist_model.sample(20, uniforms=uniforms, method=sample_plain)   # yours'),
        ReplaceLine("chosen = select(make_shapes_model",
                    'chosen = {"lr": 3e-3}   # exercise version: the solution\'s choice on validation (its selection '
                    'takes 3 minutes)'),
    ],
}


class AnchorError(ValueError):
    pass


def _source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _cell(cell_type, source):
    cell = {"cell_type": cell_type, "id": None, "metadata": {}, "source": source.splitlines(keepends=True)}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _find(cells, anchor, where):
    hits = [i for i, c in enumerate(cells) if anchor in _source(c)]
    if len(hits) != 1:
        raise AnchorError(f"{where}: anchor {anchor!r} matches {'no cell' if not hits else f'cells {hits}'}; "
                          f"the solution notebook changed: update SPEC in notebooks/exercises/generate.py")
    return hits[0]


def _stub(stub, filled):
    if not filled:
        return stub.source
    return (f"from helpers.exercises import EXERCISES\n\n"
            f"{stub.name} = EXERCISES[{stub.name!r}].reference   # filled in by the tests: the package's own function")


def exercise_notebook(name, filled=False):
    """The exercise version of notebooks/<name>.ipynb as a notebook dict, without outputs."""
    path = SOLUTIONS / f"{name}.ipynb"
    notebook = json.loads(path.read_text())
    cells = [_cell(c["cell_type"], _source(c)) for c in notebook["cells"]]
    header_cell, *operations = SPEC[name]
    for op in operations:
        i = _find(cells, op.anchor, path.name)
        if isinstance(op, Replace):
            cells[i:i + 1] = [_cell("code", _stub(c, filled)) if isinstance(c, Stub) else _cell(*c) for c in op.cells]
        else:
            lines = _source(cells[i]).split("\n")
            j = _find([{"source": line} for line in lines], op.anchor, f"{path.name}, cell {i}")
            lines[j] = lines[j][:len(lines[j]) - len(lines[j].lstrip())] + op.line   # at the line's indentation
            source = "\n".join(lines)
            try:
                compile(source, f"{path.name}, cell {i}", "exec")
            except SyntaxError as err:
                raise AnchorError(f"{path.name}, cell {i}: replacing the line with {op.anchor!r} leaves invalid "
                                  f"code ({err.msg}): the statement spans several lines; update SPEC") from None
            cells[i] = _cell("code", source)
    cells.insert(1, _cell(*header_cell))
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"   # nbformat 4.5 wants ids; stable ones keep regenerations byte-identical
    metadata = {k: v for k, v in notebook["metadata"].items() if k in ("kernelspec", "language_info")}
    return {"cells": cells, "metadata": copy.deepcopy(metadata), "nbformat": notebook["nbformat"],
            "nbformat_minor": notebook["nbformat_minor"]}


def exercises(name):
    """The functions the learner writes in notebook `name`."""
    return [c.name for op in SPEC[name][1:] if isinstance(op, Replace) for c in op.cells if isinstance(c, Stub)]


def write(notebook, path):
    Path(path).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")


def main():
    for name in SPEC:
        write(exercise_notebook(name), HERE / f"{name}.ipynb")
        print(f"wrote notebooks/exercises/{name}.ipynb")


if __name__ == "__main__":
    try:
        main()
    except AnchorError as err:
        sys.exit(f"generate.py: {err}")
