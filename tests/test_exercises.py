"""The exercise checks (helpers/exercises.py): each passes on the package's own function (saying it was the
package's) and fails, with the intended message, on known-wrong solutions; a check leaves every random state as
it was; bad input gets a message naming the exercise and its signature; the committed exercise notebooks are
fresh generations of the solution notebooks; filled in with the package's functions, they execute without errors
and every check passes."""
import importlib.util
import json
import os
import random
import warnings
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
def test_the_package_function_passes_but_is_named_as_not_the_learners(name, capsys):
    reference = EXERCISES[name].reference
    check(name)(reference)
    out = capsys.readouterr().out
    assert out.startswith(f"{name}: OK, ") and out.count("\n") == 1
    assert out.rstrip().endswith(f"; but this was the package's own {reference.__module__}.{reference.__qualname__}, "
                                 f"not yours: run the cell that defines your {name}, then this check again")


def test_a_check_run_before_the_learners_cell_says_it_checked_the_package_function(capsys):
    from helpers.models.made import connectivity_numbers   # as notebook 3 imports it, before its stubs
    exercises.check_connectivity_numbers(connectivity_numbers)
    assert "the package's own helpers.models.made.connectivity_numbers, not yours" in capsys.readouterr().out


# --- known-wrong solutions, each with the message it must get ---------------------------------------------------

def histogram_over_the_batch(logits, x):
    return logits[x].log_softmax(0)        # softmax over the examples, not the categories


def histogram_unnormalized(logits, x):
    return logits[x]


def histogram_naive(logits, x):
    return torch.log(torch.exp(logits[x]) / torch.exp(logits).sum())


def histogram_in_reverse(logits, x):
    return logits.log_softmax(0).flip(0)[x]   # normalized, but each x gets another category's probability


def histogram_log_softmax_of_x(logits, x):
    return F.log_softmax(x, 0)             # of the categories: torch has no log_softmax for long tensors


def histogram_with_its_parameters_swapped(x, logits):
    return logits.log_softmax(0)[x]


def unwritten_helper(logits):
    raise NotImplementedError


def histogram_calling_an_unwritten_helper(logits, x):
    return unwritten_helper(logits)[x]


def mixture_with_a_softplus_scale(x, logits, means, log_scales, d):
    s = F.softplus(log_scales)   # log_scales holds log s: s = exp(log_scales)
    centered = x[..., None].float() - means
    up, down = F.logsigmoid((centered + 0.5) / s), F.logsigmoid(-(centered - 0.5) / s)
    log_bin = torch.where((x == 0)[..., None], up, torch.where((x == d - 1)[..., None], down,
                                                               up + down + torch.log(-torch.expm1(-1 / s))))
    return logits.log_softmax(-1) + log_bin


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
    ("histogram_log_prob", histogram_log_softmax_of_x,
     "raised NotImplementedError: \"log_softmax_kernel_impl\" not implemented for 'Long'\n  torch has no such "
     "operation for Long tensors: an integer tensor reached an operation on real numbers"),
    ("histogram_log_prob", histogram_with_its_parameters_swapped,
     "that your function takes its parameters in the order (logits, x)"),
    ("histogram_log_prob", histogram_calling_an_unwritten_helper,
     "histogram_log_prob(logits, x) raised NotImplementedError"),
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


def test_not_written_yet_only_for_the_stubs_own_raise():
    """Torch's NotImplementedError, or one from a function the learner's calls, is the learner's error to see."""
    for wrong in (histogram_log_softmax_of_x, histogram_calling_an_unwritten_helper):
        with pytest.raises(ExerciseFailed) as failure:
            exercises.check_histogram_log_prob(wrong)
        assert "not written yet" not in str(failure.value)
        assert isinstance(failure.value.__cause__, NotImplementedError)   # its traceback shown above the message


@pytest.mark.parametrize("name, wrong", [("histogram_log_prob", histogram_in_reverse),
                                         ("weighted_component_log_probs", mixture_with_a_softplus_scale)])
def test_a_failing_check_prints_no_warning_above_its_message(name, wrong):
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)   # torch warns once per process otherwise: an earlier test could hide it
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(ExerciseFailed):
                check(name)(wrong)
    finally:
        torch.set_warn_always(warn_always)
    assert [str(w.message) for w in caught] == []


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


def test_every_random_state_a_check_touches_is_restored(monkeypatch):
    """With no GPU here, CUDA (two devices) and MPS are stand-ins that record their calls: each state is saved before
    a check and set back after, and none is reseeded; the CPU's, Python's and numpy's generators are as before,
    whether the check passes or fails and though the learner's function draws from each."""
    def drawing_from_every_generator(logits, x):
        random.random(), np.random.rand(), torch.rand(1)
        return logits.log_softmax(0)[x]

    def wrong_and_drawing_from_every_generator(logits, x):
        return drawing_from_every_generator(logits, x).exp()

    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: ["state of cuda:0", "state of cuda:1"])
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: calls.append(("cuda", states)))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: "state of mps")
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda state: calls.append(("mps", state)))
    for module, seeding in ((torch.cuda, "manual_seed_all"), (torch.cuda, "manual_seed"), (torch.mps, "manual_seed")):
        monkeypatch.setattr(module, seeding, lambda seed, seeding=seeding: calls.append((seeding, seed)))
    for fn in (drawing_from_every_generator, wrong_and_drawing_from_every_generator):
        before = random.getstate(), np.random.get_state(), torch.get_rng_state()
        calls.clear()
        if fn is drawing_from_every_generator:
            exercises.check_histogram_log_prob(fn)
        else:
            with pytest.raises(ExerciseFailed):
                exercises.check_histogram_log_prob(fn)
        assert calls == [("cuda", ["state of cuda:0", "state of cuda:1"]), ("mps", "state of mps")]
        assert random.getstate() == before[0] and torch.equal(torch.get_rng_state(), before[2])
        assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), before[1]))


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
