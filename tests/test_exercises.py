"""The exercise checks (helpers/exercises.py): each passes on the package's own function and fails, with the
intended message, on known-wrong solutions; bad input gets a message naming the exercise and its signature; the
committed exercise notebooks are fresh generations of the solution notebooks; filled in with the package's
functions, they execute without errors and every check passes."""
import importlib.util
import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nbclient import NotebookClient

from helpers import exercises
from helpers.exercises import EXERCISES, ExerciseFailed

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("generate", ROOT / "notebooks" / "exercises" / "generate.py")
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


def check(name):
    return getattr(exercises, f"check_{name}")


@pytest.mark.parametrize("name", EXERCISES)
def test_check_passes_on_the_package_function_and_says_what_it_verified(name, capsys):
    check(name)(EXERCISES[name].reference)
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{name}: OK, ") and "\n" not in out


# --- known-wrong solutions, each with the message it must get ---------------------------------------------------

def histogram_over_the_batch(logits, x):
    return logits[x].log_softmax(0)        # softmax over the examples, not the categories


def histogram_unnormalized(logits, x):
    return logits[x]


def histogram_naive(logits, x):
    return torch.log(torch.exp(logits[x]) / torch.exp(logits).sum())


def mixture_without_edge_bins(x, logits, means, log_scales, d):
    inv_s = torch.exp(-log_scales)
    centered = x[..., None].float() - means
    interior = F.logsigmoid((centered + 0.5) * inv_s) + F.logsigmoid(-(centered - 0.5) * inv_s) + torch.log(-torch.expm1(-inv_s))
    return logits.log_softmax(-1) + interior


def mixture_naive_difference(x, logits, means, log_scales, d):
    s = log_scales.exp()
    centered = x[..., None].float() - means
    upper = torch.where(x[..., None] == d - 1, 1.0, torch.sigmoid((centered + 0.5) / s))
    lower = torch.where(x[..., None] == 0, 0.0, torch.sigmoid((centered - 0.5) / s))
    return logits.log_softmax(-1) + torch.log(upper - lower)


def mixture_without_weights(x, logits, means, log_scales, d):
    return EXERCISES["weighted_component_log_probs"].reference(x, logits, means, log_scales, d) - logits.log_softmax(-1)


def numbers_from_one_to_D(ordering, hidden_sizes, generator=None):
    D = len(ordering)
    return [ordering.argsort() + 1] + [torch.randint(1, D + 1, (h,), generator=generator) for h in hidden_sizes]


def numbers_ignoring_the_minimum(ordering, hidden_sizes, generator=None):
    D = len(ordering)
    return [ordering.argsort() + 1] + [torch.randint(1, D, (h,), generator=generator) for h in hidden_sizes]


def numbers_missing_D_minus_1(ordering, hidden_sizes, generator=None):
    numbers = [ordering.argsort() + 1]
    for h in hidden_sizes:
        low = int(numbers[-1].min())
        numbers.append(torch.randint(low, max(low + 1, len(ordering) - 1), (h,), generator=generator))
    return numbers


def numbers_as_int32(ordering, hidden_sizes, generator=None):
    return [m.int() for m in EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, generator)]


def numbers_of_the_ordering(ordering, hidden_sizes, generator=None):
    right = EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, generator)
    return [torch.as_tensor(ordering) + 1] + right[1:]


def numbers_without_the_generator(ordering, hidden_sizes, generator=None):
    return EXERCISES["connectivity_numbers"].reference(ordering, hidden_sizes, None)


def masks_non_strict(numbers):
    masks = [m_out[:, None] >= m_in[None, :] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    return masks + [numbers[0][:, None] >= numbers[-1][None, :]]


def masks_strict_everywhere(numbers):
    masks = [m_out[:, None] > m_in[None, :] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    return masks + [numbers[0][:, None] > numbers[-1][None, :]]


def masks_transposed(numbers):
    return [m.T for m in EXERCISES["masks_from_numbers"].reference(numbers)]


def bernoulli_naive(logits, x):
    return x * torch.log(torch.sigmoid(logits)) + (1 - x) * torch.log(1 - torch.sigmoid(logits))


def bernoulli_swapped(logits, x):
    return x * F.logsigmoid(-logits) + (1 - x) * F.logsigmoid(logits)


def bernoulli_per_image(logits, x):
    return EXERCISES["bernoulli_log_prob"].reference(logits, x).sum(-1)


def sampler_ignoring_the_ordering(model, u, mask_id, given, known):
    x = torch.zeros(u.shape, dtype=torch.long)
    for dim in range(model.D):
        x[:, dim] = model._categories(model(x, mask_id)[:, dim], u[:, dim])
    return x


def sampler_with_its_own_randomness(model, u, mask_id, given, known):
    return EXERCISES["sample_plain"].reference(model, torch.rand_like(u), mask_id, given, known)   # not u


def sampler_ignoring_given(model, u, mask_id, given, known):
    return EXERCISES["sample_plain"].reference(model, u, mask_id, given, [False] * model.D)


WRONG = [
    ("histogram_log_prob", histogram_over_the_batch, "depends on the other examples in the batch"),
    ("histogram_log_prob", histogram_unnormalized, "by enumeration, sum to"),
    ("histogram_log_prob", histogram_naive, "never exp(θ) or the log of a softmax"),
    ("weighted_component_log_probs", mixture_without_edge_bins, "the edge bin 0 should take all the mass below 0.5"),
    ("weighted_component_log_probs", mixture_naive_difference, "log-probabilities become -inf at scale 1e-4"),
    ("weighted_component_log_probs", mixture_without_weights, "sum to 1, not to its weight π_i"),
    ("connectivity_numbers", numbers_from_one_to_D, "it can feed no output"),
    ("connectivity_numbers", numbers_ignoring_the_minimum, "it gets no input"),
    ("connectivity_numbers", numbers_missing_D_minus_1, "was ever numbered [4]"),
    ("connectivity_numbers", numbers_as_int32, "one-dimensional long tensors (torch.long, what the model stores)"),
    ("connectivity_numbers", numbers_of_the_ordering, "(that is ordering + 1"),
    ("connectivity_numbers", numbers_without_the_generator, "two generators seeded alike gave different numbers"),
    ("masks_from_numbers", masks_non_strict, "can see input 0, its own dimension: the output mask must be strict"),
    ("masks_from_numbers", masks_strict_everywhere, "drops the weight from input"),
    ("masks_from_numbers", masks_transposed, "masks of shapes [(6, 4), (6, 6), (4, 6)] (out, in"),
    ("bernoulli_log_prob", bernoulli_naive, "compute log σ(ℓ) without forming σ(ℓ)"),
    ("bernoulli_log_prob", bernoulli_swapped, "x = 1 gets log σ(−ℓ)"),
    ("bernoulli_log_prob", bernoulli_per_image, "one log-probability per bit, of the logits' shape"),
    ("sample_plain", sampler_ignoring_the_ordering, "the samples do not follow the model"),
    ("sample_plain", sampler_with_its_own_randomness, "differ from the package's from the same uniforms"),
    ("sample_plain", sampler_ignoring_given, "copy the known dimensions from given"),
]


@pytest.mark.parametrize("name, wrong, message", WRONG, ids=[w.__name__ for _, w, _ in WRONG])
def test_check_fails_a_known_wrong_solution_with_the_intended_message(name, wrong, message):
    with pytest.raises(ExerciseFailed) as failure:
        check(name)(wrong)
    assert message in str(failure.value)
    assert str(failure.value).startswith(name)


# --- bad input: a clear message naming the exercise and its signature; the notebook's state unharmed ----------

@pytest.mark.parametrize("name", EXERCISES)
def test_something_that_is_not_a_function_is_named(name):
    with pytest.raises(ExerciseFailed, match=rf"check_{name} takes your function {name}, got 3 .*expected: "
                                             rf"{name}\(") as failure:
        check(name)(3)
    assert EXERCISES[name].signature in str(failure.value)


@pytest.mark.parametrize("name", EXERCISES)
def test_a_function_with_the_wrong_parameters_is_named(name):
    with pytest.raises(ExerciseFailed, match=rf"{name} must take the parameters") as failure:
        check(name)(lambda only_one, two, three, four, five, six: None)
    assert EXERCISES[name].signature in str(failure.value)


@pytest.mark.parametrize("name", EXERCISES)
def test_a_function_that_raises_is_named_with_its_error_and_the_random_state_is_restored(name):
    def not_yet(*args):
        torch.rand(3), np.random.rand(3)   # draws from the notebook's generators, which the check must restore
        raise NotImplementedError

    def broken(*args):
        raise IndexError("index 7 is out of bounds")

    torch.manual_seed(1), np.random.seed(1)
    expected = torch.rand(2), np.random.rand(2)
    torch.manual_seed(1), np.random.seed(1)
    with pytest.raises(ExerciseFailed, match=rf"{name} is not written yet"):
        check(name)(not_yet)
    assert torch.equal(torch.rand(2), expected[0]) and np.array_equal(np.random.rand(2), expected[1])
    with pytest.raises(ExerciseFailed, match=rf"raised IndexError: index 7 is out of bounds") as failure:
        check(name)(broken)
    assert EXERCISES[name].signature in str(failure.value)
    assert isinstance(failure.value.__cause__, IndexError)   # the learner's traceback stays visible


# --- the exercise notebooks: generated, stripped, and executable with the package's functions filled in ---------

@pytest.mark.parametrize("name", generate.SPEC)
def test_committed_exercises_are_a_fresh_generation_without_outputs(name):
    committed = json.loads((ROOT / "notebooks" / "exercises" / f"{name}.ipynb").read_text())
    cells = lambda nb: [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]
    assert cells(committed) == cells(generate.exercise_notebook(name)), \
        f"notebooks/exercises/{name}.ipynb is stale: run `python notebooks/exercises/generate.py`"
    code = [c for c in committed["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code), f"{name}: strip its outputs"
    stubs = [c for c in code if "raise NotImplementedError" in "".join(c["source"])]
    checks = [c for c in code if "from helpers.exercises import check_" in "".join(c["source"])]
    assert len(stubs) >= 1 and len(checks) >= 1 and committed["cells"][0]["cell_type"] == "markdown"


def test_a_missing_or_ambiguous_anchor_stops_the_generation_naming_notebook_and_anchor(monkeypatch):
    header = generate.SPEC["01_histogram"][0]
    monkeypatch.setitem(generate.SPEC, "01_histogram", [header, generate.Replace("no such text", ())])
    with pytest.raises(generate.AnchorError, match=r"01_histogram.ipynb: anchor 'no such text' matches no cell"):
        generate.exercise_notebook("01_histogram")
    monkeypatch.setitem(generate.SPEC, "01_histogram", [header, generate.ReplaceLine("import", "x = 1")])
    with pytest.raises(generate.AnchorError, match=r"01_histogram.ipynb: anchor 'import' matches cells \[\d+, \d+"):
        generate.exercise_notebook("01_histogram")


def test_a_replaced_line_keeps_its_indentation(monkeypatch):
    header = generate.SPEC["01_histogram"][0]
    monkeypatch.setitem(generate.SPEC, "01_histogram", [header, generate.ReplaceLine("p = p[p > 0]", "p = p[p >= 0]")])
    cells = generate.exercise_notebook("01_histogram")["cells"]
    assert "\n    p = p[p >= 0]\n" in "".join("".join(c["source"]) for c in cells)


@pytest.mark.parametrize("name", generate.SPEC)
def test_filled_exercise_notebook_executes_and_every_check_passes(name, monkeypatch):
    notebook = nbformat.reads(json.dumps(generate.exercise_notebook(name, filled=True)), as_version=4)
    # the kernel imports this checkout's helpers, whatever else is installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # run where the exercise notebooks live, so that the set-up cell finds the project root as a learner's does
    NotebookClient(notebook, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks" / "exercises")}}).execute()
    printed = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    for exercise in generate.exercises(name):
        assert f"{exercise}: OK, " in printed, f"{name}: the check of {exercise} printed no OK line"


def test_a_correct_function_computing_in_float64_passes(capsys):
    exercises.check_histogram_log_prob(lambda logits, x: logits.double().log_softmax(0)[x])
    assert capsys.readouterr().out.startswith("histogram_log_prob: OK, ")
