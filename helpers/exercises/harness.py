"""What every exercise check shares: the exercises and their reference functions, validating and calling a
learner's function (its failures turned into `ExerciseFailed` naming the exercise and its signature), isolating
the notebook's random state, and the comparisons the checks of several notebooks use."""

import contextlib
import copy
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
from ..training import train_epochs


class ExerciseFailed(AssertionError):
    """A learner's function failed its check; the message says what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Exercise:
    name: str  # of the function the learner writes
    parameters: tuple  # its parameters, in order
    returns: str  # what it returns
    reference: Callable | None  # the package's own function, with the same signature (None: an answer
    # function, whose settings are the learner's choice, checked by its contract alone)

    @property
    def signature(self):
        return f"{self.name}({', '.join(self.parameters)})"


def train_reference(model, batches, held_out, epochs, lr):
    """Notebook 1's training loop as the package runs it (helpers.training.train_epochs): Adam on model.loss,
    one step per batch; (the loss of every batch before its step, the loss of held_out before training and
    after each epoch)."""
    result = train_epochs(model, batches, [torch.as_tensor(held_out)], epochs, lr=lr, progress=False)
    return result.train_losses.tolist(), result.valid_losses.tolist()


def direct_mask(ordering):
    """The direct connections' mask (D, D) for an ordering, uint8: [i, j] = 1 when pixel j comes strictly before
    pixel i, the output mask of the numbers m0 alone (the package's MADE builds it so)."""
    ordering = torch.as_tensor(ordering)
    return masks_from_numbers([ordering.argsort() + 1])[0]


ANSWER = (
    "(train_losses, test_losses, distribution): one loss per iteration, one per epoch with the value before "
    "training first, d probabilities"
)

EXERCISES = {
    e.name: e
    for e in [
        Exercise(
            "histogram_log_prob", ("logits", "x"), "log p(x), a tensor of x's shape", histogram_log_prob
        ),
        Exercise(
            "train",
            ("model", "batches", "held_out", "epochs", "lr"),
            "(train_losses, held_out_losses): one loss per batch, and the held-out loss before training and "
            "after each epoch",
            train_reference,
        ),
        Exercise("q1_a", ("train_data", "test_data", "d", "dset_id"), ANSWER, None),
        Exercise("q1_b", ("train_data", "test_data", "d", "dset_id"), ANSWER, None),
        Exercise(
            "q2_a",
            ("train_data", "test_data", "d", "dset_id"),
            "(train_losses, test_losses, distribution): one loss per iteration, one per epoch with the value "
            "before training first (nats per dimension), the d x d table of p(x0, x1)",
            None,
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
            "direct_mask",
            ("ordering",),
            "the direct path's 0/1 mask (D, D): [i, j] = 1 when pixel j comes before pixel i in the ordering",
            direct_mask,
        ),
        Exercise(
            "q2_b",
            ("train_data", "test_data", "image_shape", "dset_id"),
            "(train_losses, test_losses, samples): one loss per iteration, one per epoch with the value before "
            "training first (nats per dimension), 100 samples (100, H, W, 1) of 0/1",
            None,
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
    own = exercise.reference is not None and getattr(fn, "__func__", fn) is exercise.reference
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


def gradients_match(name, got, expected, parameters, why=lambda parameter: ""):
    """The gradient of Σ w·got to each of `parameters` (a dict name -> tensor), for fixed positive weights w,
    must be the reference's: values can be right while part of the formula is cut from the graph (.data,
    .detach(), .item(), numpy), and then training follows a wrong gradient. why(parameter) adds what such a
    mistake means for that parameter."""
    weights = 0.5 + torch.rand(got.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    tensors = list(parameters.values())

    def gradients(out):
        if not out.requires_grad:
            return [None] * len(tensors)
        return torch.autograd.grad(
            (out.double() * weights).sum(), tensors, allow_unused=True, retain_graph=True
        )

    for parameter, mine, true in zip(parameters, gradients(got), gradients(expected)):
        true = torch.zeros_like(parameters[parameter]) if true is None else true
        if mine is None or (not mine.any() and true.any()):
            raise ExerciseFailed(
                f"{name}: the values are right, but they carry no gradient to {parameter}: it was used outside "
                f"torch's graph ({parameter}.data, .detach(), .item() or numpy), so training would never change "
                f"{parameter}. Compute with torch operations on {parameter} itself{why(parameter)}"
            )
        if differs(mine, true, rtol=1e-3, atol=1e-4).any():
            show = lambda g: (
                "[" + ", ".join(f"{v:.3g}" for v in g.detach().double().flatten()[:4].tolist()) + "]"
            )
            raise ExerciseFailed(
                f"{name}: the values are right, but the gradient to {parameter} is not: for a weighted sum of "
                f"the log-probabilities it is {show(mine)}, should be {show(true)}. Part of the formula that "
                f"depends on {parameter} is cut from the graph (.data, .detach(), .item() or numpy), so it counts "
                f"as a constant in training{why(parameter)}"
            )


def _fail_answer(name, error):
    raise ExerciseFailed(f"{name}: {error}") from None


def check_answer(name, call, d, dset_id, data, dims=1, image_shape=None):
    """The course's contract for an answer `name(train_data, test_data, d, dset_id)`, called with the
    same data as train_data and test_data (so the loss before training is known from the first iteration):
    three results; a train loss per iteration and a test loss per epoch with the value before training first;
    d probabilities summing to 1 by enumeration, of which the last test loss is the mean NLL; and a loss that
    training lowers. Returns (train losses, test losses, distribution) as numpy arrays. dims: the dimensions of
    an example (data (N, dims) for dims > 1, question 2(a)'s pairs): the distribution is then a table (d,) * dims
    and the losses are per dimension. image_shape: question 2(b)'s contract instead, `name(train_data, test_data,
    image_shape, dset_id)` on images data (N, *image_shape, 1) with values in [0, d): the third result is then 100
    samples of that shape, and the losses are per dimension (no distribution to check them against)."""
    from ..course import (
        checked_distribution,
        checked_loss_curves,
    )  # course imports plotting: only when checked

    images = image_shape is not None
    out = call(data, data.copy(), tuple(image_shape) if images else d, dset_id)
    third = "samples" if images else "distribution"
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        raise ExerciseFailed(
            f"{name} must return three things, (train_losses, test_losses, {third}), got "
            f"{_describe(out) if not isinstance(out, (tuple, list)) else f'{len(out)} things'}"
        )
    try:
        train, test = checked_loss_curves(out[0], out[1], name)
        p = _checked_samples(out[2], (100, *image_shape, 1), d, name) if images else None
        p = checked_distribution(out[2], (d,) * dims, name) if not images else p
    except ValueError as error:
        _fail_answer(name, error)
    epochs = len(test) - 1
    if len(train) % epochs:
        raise ExerciseFailed(
            f"{name} returned {len(train)} train losses and {len(test)} test losses: with the test loss before "
            f"training first and one after each of E epochs, the train losses (one per iteration, the same number "
            f"each epoch) are a multiple of E = {epochs}. Does test_losses start with the loss before training? "
            f"Does train_losses hold one loss per batch (not per epoch)?"
        )
    if len(train) == epochs and abs(test[0] - train[0]) > 1e-4:
        raise ExerciseFailed(
            f"{name}: test_losses[0] = {test[0]:.4f}, but here test_data is train_data, so the loss before "
            f"training is the first iteration's, train_losses[0] = {train[0]:.4f} (one full batch per epoch). "
            f"test_losses must start with the loss of the untrained model, then one after each epoch"
            + (" (yours starts after the first epoch)" if test[0] < train[0] else "")
        )
    if not images:  # samples have no distribution to hold the last test loss against
        with np.errstate(divide="ignore"):
            index = np.asarray(data) if dims == 1 else tuple(np.asarray(data).T)
            nll = float(-np.log(p[index]).mean()) / dims
        if not abs(nll - test[-1]) <= 1e-3:
            raise ExerciseFailed(
                f"{name}: the last test loss is {test[-1]:.4f}, but the distribution returned gives the test data a "
                f"mean NLL{' per dimension' if dims > 1 else ''} of {nll:.4f}: return the trained model's distribution "
                f"({'its d probabilities' if dims == 1 else f'its table of p(x) over all d ** {dims} values'}) and its "
                f"test loss after the last epoch"
                + (f", in nats per dimension (the NLL divided by {dims})" if dims > 1 else "")
            )
    if not test[-1] < test[0] - 1e-3:
        raise ExerciseFailed(
            f"{name}: training did not lower the loss (test loss {test[0]:.4f} before, {test[-1]:.4f} after "
            f"{epochs} epochs, on the training data itself): the model's parameters must be what the optimizer "
            f"updates"
        )
    return train, test, p


def _checked_samples(samples, shape, d, name):
    """The samples an image answer returned, as an integer numpy array of the given shape with values in [0, d)
    (a ValueError says what is wrong)."""
    x = samples.detach().cpu().numpy() if torch.is_tensor(samples) else np.asarray(samples)
    if x.shape != shape:
        raise ValueError(
            f"{name} returned samples of shape {x.shape}, not {shape} (100 images with a channel axis)"
        )
    if not np.isin(x, np.arange(d)).all():
        raise ValueError(f"{name} returned samples with values other than 0 to {d - 1}, e.g. {x.flat[0]!r}")
    return x.astype(np.int64)


def answer_data(d, n=300, seed=0):
    """n draws like the course's set 1 (0.4 + 0.1 N(0, 1), digitized into d bins), as the course passes data: an
    integer numpy array; from a generator of its own, the notebook's untouched."""
    x = np.random.default_rng(seed).normal(0.4, 0.1, n)
    return np.digitize(x, np.linspace(0, 1, d)).clip(0, d - 1).astype(np.int64)


def check_1d_answer(name, fn):
    """Check the course's answer `name` of question 1 (q1_a, q1_b): (train_data, test_data, d, dset_id) ->
    (train_losses, test_losses, distribution), the course's contract, on a small set like the course's set 1 with
    the settings of dset_id = 1."""
    exercise, call = prepare(name, fn)
    with isolated():
        d = 20
        train, test, _ = check_answer(name, call, d, 1, answer_data(d))
    passed(
        exercise,
        fn,
        f"on {len(answer_data(d))} points (d = {d}) as train and test data: {len(train)} train losses and "
        f"{len(test)} test losses, the first before training; d probabilities summing to 1, whose NLL is the "
        f"last test loss; the loss went down",
    )


# --- what the checks of a learner's model class share (notebooks 3 and 4) ---


def check_model_class(name, cls, signature, what):
    """Refuse what is not an nn.Module subclass, naming the class the check takes."""
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise ExerciseFailed(
            f"check_{name} takes your class {name} (an nn.Module subclass: {signature}; {what}), got "
            f"{cls!r:.80} (a {type(cls).__name__})"
        )


def build_model(name, cls, signature, *args, **kwargs):
    """cls(*args, **kwargs), its failures (the stub's NotImplementedError included) turned into ExerciseFailed."""
    try:
        return cls(*args, **kwargs)
    except NotImplementedError as err:
        if not err.args:
            raise ExerciseFailed(
                f"{name} is not written yet (its __init__ or a function it calls raises NotImplementedError): "
                f"write it, run its cell, then the check again"
            ) from None
        raise
    except Exception as err:
        called = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
        raise ExerciseFailed(
            f"{name}({called}) raised {type(err).__name__}: {err}\n  (your code's traceback is above; expected: "
            f"{signature})"
        ) from err


def run_method(name, what, fn, *args, expected):
    """fn(*args), the method `what` of the learner's `name`, its failures turned into ExerciseFailed naming
    `expected` (what the methods should do)."""
    try:
        return fn(*args)
    except NotImplementedError as err:
        if not err.args:
            raise ExerciseFailed(
                f"{name}.{what} is not written yet (it, or a function it calls, raises NotImplementedError): "
                f"write it, run its cell, then the check again"
            ) from None
        raise ExerciseFailed(f"{name}.{what} raised NotImplementedError: {err}") from err
    except Exception as err:
        raise ExerciseFailed(
            f"{name}.{what} raised {type(err).__name__}: {err}\n  (your code's traceback is above; expected: "
            f"{expected})"
        ) from err


def moves_with_the_model(name, module, x, what):
    """The module moved to the meta device must still compute `what` on x there: a tensor it keeps as a plain
    attribute (a mask not registered as a buffer) stays behind, as it would on a GPU."""
    moved = copy.deepcopy(module).to("meta")
    try:
        with torch.no_grad():
            moved(x.to("meta"))
    except (
        Exception
    ) as err:  # the meta device computes no values: errors other than a device mismatch prove nothing
        if not isinstance(err, RuntimeError) or "device" not in str(err):
            return
        raise ExerciseFailed(
            f"{name}: moved with .to(device), the {what} fails ({err}): a tensor the forward pass uses stayed "
            f"where it was. A mask kept as a plain attribute is not moved by .to(device) (nor saved by "
            f"state_dict): register it as a buffer (nn.Module.register_buffer), and create any other tensor on "
            f"the input's device"
        ) from None


def chi_square(counts, expected):
    """Pearson's statistic, its degrees of freedom and p-value; cells expecting fewer than 5 are pooled."""
    small = expected < 5
    counts = torch.cat([counts[~small], counts[small].sum(0, keepdim=True)]) if small.any() else counts
    expected = (
        torch.cat([expected[~small], expected[small].sum(0, keepdim=True)]) if small.any() else expected
    )
    statistic = float(((counts - expected) ** 2 / expected).sum())
    dof = len(counts) - 1
    return statistic, dof, float(torch.special.gammaincc(torch.tensor(dof / 2), torch.tensor(statistic / 2)))
