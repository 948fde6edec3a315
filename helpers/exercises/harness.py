"""What every exercise check shares: the exercises and their reference functions, validating and calling a
learner's function (its failures turned into `ExerciseFailed` naming the exercise and its signature), isolating
the notebook's random state, and the comparisons the checks of several notebooks use."""

import contextlib
import dataclasses
import functools
import inspect
import random
import re
from typing import Callable

import numpy as np
import torch

from ..models.histogram import histogram_log_prob
from ..models.logistic_mixture import weighted_component_log_probs
from ..models.made import bernoulli_log_prob
from ..models.masks import connectivity_numbers, masks_from_numbers
from ..models.sampling import sample_plain


class ExerciseFailed(AssertionError):
    """A learner's function failed its check; the message says what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Exercise:
    name: str  # of the function the learner writes
    parameters: tuple  # its parameters, in order
    returns: str  # what it returns
    reference: Callable  # the package's own function, with the same signature

    @property
    def signature(self):
        return f"{self.name}({', '.join(self.parameters)})"


EXERCISES = {
    e.name: e
    for e in [
        Exercise(
            "histogram_log_prob", ("logits", "x"), "log p(x), a tensor of x's shape", histogram_log_prob
        ),
        Exercise(
            "weighted_component_log_probs",
            ("x", "logits", "means", "log_scales", "d"),
            "log π_i + log p_i(x), a tensor (*x.shape, n_components)",
            weighted_component_log_probs,
        ),
        Exercise(
            "connectivity_numbers",
            ("ordering", "hidden_sizes", "generator"),
            "[m0, m1, ..., mL], one integer tensor per layer",
            connectivity_numbers,
        ),
        Exercise(
            "masks_from_numbers",
            ("numbers",),
            "the L + 1 masks, 0/1 tensors of shape (out, in)",
            masks_from_numbers,
        ),
        Exercise(
            "bernoulli_log_prob",
            ("logits", "x"),
            "log p(x_i | x_<i) of every bit, a tensor of the logits' shape",
            bernoulli_log_prob,
        ),
        Exercise(
            "sample_plain",
            ("model", "u", "mask_id", "given", "known"),
            "x, a long tensor (n, D) of categories",
            sample_plain,
        ),
    ]
}


def prepare(name, fn, explain=None):
    """The exercise and a caller of the learner's function that turns its failures into ExerciseFailed.

    explain(err, args): an optional sentence on what an error raised by the function with these arguments means
    for this exercise, or None."""
    exercise = EXERCISES[name]
    expected = f"expected: {exercise.signature} -> {exercise.returns}"
    if not callable(fn) or isinstance(fn, type):
        raise ExerciseFailed(
            f"check_{name} takes your function {name}, got {fn!r:.80} (a {type(fn).__name__}); {expected}"
        )
    try:
        signature = inspect.signature(fn)
    except ValueError:
        signature = None  # a builtin without a signature: calling it will tell
    if signature is not None:
        try:
            signature.bind(*exercise.parameters)
        except TypeError:
            raise ExerciseFailed(
                f"{name} must take the parameters ({', '.join(exercise.parameters)}) in this order, "
                f"yours takes {signature}; {expected}"
            ) from None
    return exercise, functools.partial(_call, exercise, fn, explain)


def _call(exercise, fn, explain, *args):
    try:
        return fn(*args)
    except Exception as err:
        if isinstance(err, NotImplementedError) and _is_the_stub(err, fn):
            raise ExerciseFailed(
                f"{exercise.name} is not written yet: replace `raise NotImplementedError` in its "
                f"cell with your code, run that cell, then the check again"
            ) from None
        called = ", ".join(f"{p} = {_describe(a)}" for p, a in zip(exercise.parameters, args))
        hint = _not_implemented_hint(err, exercise) or (explain(err, args) if explain else None)
        raise ExerciseFailed(
            f"{exercise.signature} raised {type(err).__name__}: {err}\n  "
            + (f"{hint}\n  " if hint else "")
            + f"called with {called}\n  "
            f"(your code's traceback is above; expected: {exercise.signature} -> "
            f"{exercise.returns})"
        ) from err


def _is_the_stub(err, fn):
    """Whether err is the stub's bare `raise NotImplementedError`, raised in fn's own frame: torch raises
    NotImplementedError too, with a message, for an operation a dtype lacks (log_softmax of a long tensor)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return not err.args and _raised_in(err) is getattr(inspect.unwrap(fn), "__code__", None)


def _raised_in(err):
    """The code of the Python function in which err was raised."""
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code


def _not_implemented_hint(err, exercise):
    """What a NotImplementedError other than the stub's own means: torch's for an operation a dtype lacks, or the
    stub of a function that the learner's calls."""
    if not isinstance(err, NotImplementedError):
        return None
    if not err.args:
        return f"{_raised_in(err).co_name}, which your function calls, raised it: that function is not written yet"
    found = re.search(r"not implemented for '(\w+)'", str(err))
    if found is None:
        return None
    return (
        f"torch has no such operation for {found[1]} tensors: an integer tensor reached an operation on real "
        f"numbers. Check which of your arguments it is applied to (the categories x are integers), and that "
        f"your function takes its parameters in the order ({', '.join(exercise.parameters)})"
    )


def _describe(value):
    if torch.is_tensor(value):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}" if value.numel() > 6 else repr(value)
    return type(value).__name__ if isinstance(value, torch.nn.Module) else repr(value)


@contextlib.contextmanager
def isolated():
    """Gradients on and torch's CPU generator seeded inside; after, every random state that the check or the
    learner's function may have moved is as before: torch's CPU generator, CUDA's (every device) and MPS's where
    present, Python's `random` and numpy's."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    cpu_state, random_state, numpy_state = torch.get_rng_state(), random.getstate(), np.random.get_state()
    cuda_states = torch.cuda.get_rng_state_all() if cuda else None
    mps_state = torch.mps.get_rng_state() if mps else None
    try:
        with torch.enable_grad():
            torch.default_generator.manual_seed(
                0
            )  # the CPU's alone: torch.manual_seed would reseed every device
            yield
    finally:
        torch.set_rng_state(cpu_state)
        if cuda:
            torch.cuda.set_rng_state_all(cuda_states)
        if mps:
            torch.mps.set_rng_state(mps_state)
        random.setstate(random_state)
        np.random.set_state(numpy_state)


def passed(exercise, fn, verified):
    """The one line of a passing check; it says so when the function checked is the package's own, as when a
    check runs before the cell defining the learner's (a notebook that imports the package's under that name)."""
    own = getattr(fn, "__func__", fn) is exercise.reference
    note = (
        (
            f"; but this was the package's own {fn.__module__}.{fn.__qualname__}, not yours: run the cell that "
            f"defines your {exercise.name}, then this check again"
        )
        if own
        else ""
    )
    print(f"{exercise.name}: OK, {verified}{note}")


def tensor_result(name, out, shape, what):
    """out, checked to be a floating-point tensor of the given shape, with a message saying what it should hold."""
    if not torch.is_tensor(out):
        raise ExerciseFailed(
            f"{name} must return {what}, a tensor of shape {tuple(shape)}, got a {type(out).__name__}"
        )
    if tuple(out.shape) != tuple(shape):
        raise ExerciseFailed(f"{name} must return {what}, shape {tuple(shape)}, got shape {tuple(out.shape)}")
    if not out.dtype.is_floating_point:
        raise ExerciseFailed(f"{name} must return {what} as floating-point numbers, got dtype {out.dtype}")
    return out


def needs_gradient(name, out, parameters):
    if not out.requires_grad:
        raise ExerciseFailed(
            f"{name}'s result carries no gradient to the {parameters}: compute it with torch "
            f"operations on them (no .item(), .detach() or numpy), or training cannot change them"
        )


def differs(got, expected, rtol=1e-4, atol=1e-4):
    """Where got and expected are not close, compared in float64 (a learner may compute in float64)."""
    return ~torch.isclose(got.detach().double(), expected.detach().double(), rtol=rtol, atol=atol)


def same(name, got, expected, where, formula, why=""):
    """Raise at the first entry i where the learner's log-probabilities differ from the reference's, described
    by where(i)."""
    bad = differs(got, expected)
    if bad.any():
        i = int(bad.nonzero()[0][0])
        raise ExerciseFailed(
            f"{name}: log p({where(i)}) is {float(got.detach()[i]):.6g}, should be {formula} = "
            f"{float(expected.detach()[i]):.6g}{why}"
        )
