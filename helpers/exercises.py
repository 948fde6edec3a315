"""Checks for the exercise notebooks (notebooks/exercises): one per function a learner writes.

Each check runs, on the learner's function, the properties this package's own tests rely on (normalization by
enumeration, the autoregressive property of the masks, stability in log space, samples that follow the model),
and says in the model's terms what is wrong and why. A passing check prints one line saying what it verified; a
failing one raises `ExerciseFailed` with that explanation. Something that is not a function, a function with the
wrong parameters, or one that raises gets a message naming the exercise and the expected signature (or, for the
stub's own `raise NotImplementedError`, that it is not written yet). A check handed the package's own function
passes but says so. The checks leave the notebook's state as it was: every random generator a check or the
learner's function may draw from (torch's on the CPU, CUDA and MPS, Python's and numpy's) is restored after each.

`EXERCISES` lists the exercises with the package's own function for each (`reference`), the one a check compares
with and the one the tests fill into the exercise notebooks.
"""
import contextlib
import dataclasses
import functools
import inspect
import random
import re
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .models.histogram import Histogram
from .models.logistic_mixture import DiscretizedLogisticMixture
from .models.made import MADE, bernoulli_log_prob, connectivity_numbers, masks_from_numbers, reachability


class ExerciseFailed(AssertionError):
    """A learner's function failed its check; the message says what is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True)
class Exercise:
    name: str               # of the function the learner writes
    parameters: tuple       # its parameters, in order
    returns: str            # what it returns
    reference: Callable     # the package's own function, with the same signature

    @property
    def signature(self):
        return f"{self.name}({', '.join(self.parameters)})"


EXERCISES = {e.name: e for e in [
    Exercise("histogram_log_prob", ("logits", "x"), "log p(x), a tensor of x's shape",
             Histogram.log_prob_from_logits),
    Exercise("weighted_component_log_probs", ("x", "logits", "means", "log_scales", "d"),
             "log π_i + log p_i(x), a tensor (*x.shape, n_components)",
             DiscretizedLogisticMixture.weighted_component_log_probs),
    Exercise("connectivity_numbers", ("ordering", "hidden_sizes", "generator"),
             "[m0, m1, ..., mL], one integer tensor per layer", connectivity_numbers),
    Exercise("masks_from_numbers", ("numbers",), "the L + 1 masks, 0/1 tensors of shape (out, in)", masks_from_numbers),
    Exercise("bernoulli_log_prob", ("logits", "x"), "log p(x_i | x_<i) of every bit, a tensor of the logits' shape",
             bernoulli_log_prob),
    Exercise("sample_plain", ("model", "u", "mask_id", "given", "known"), "x, a long tensor (n, D) of categories",
             MADE._sample_plain),
]}


# --- what every check shares: validating the function, calling it, isolating the notebook's state -----------

def _prepare(name, fn, explain=None):
    """The exercise and a caller of the learner's function that turns its failures into ExerciseFailed.

    explain(err, args): an optional sentence on what an error raised by the function with these arguments means
    for this exercise, or None."""
    exercise = EXERCISES[name]
    expected = f"expected: {exercise.signature} -> {exercise.returns}"
    if not callable(fn) or isinstance(fn, type):
        raise ExerciseFailed(f"check_{name} takes your function {name}, got {fn!r:.80} (a {type(fn).__name__}); "
                             f"{expected}")
    try:
        signature = inspect.signature(fn)
    except ValueError:
        signature = None   # a builtin without a signature: calling it will tell
    if signature is not None:
        try:
            signature.bind(*exercise.parameters)
        except TypeError:
            raise ExerciseFailed(f"{name} must take the parameters ({', '.join(exercise.parameters)}) in this order, "
                                 f"yours takes {signature}; {expected}") from None
    return exercise, functools.partial(_call, exercise, fn, explain)


def _call(exercise, fn, explain, *args):
    try:
        return fn(*args)
    except Exception as err:
        if isinstance(err, NotImplementedError) and _is_the_stub(err, fn):
            raise ExerciseFailed(f"{exercise.name} is not written yet: replace `raise NotImplementedError` in its "
                                 f"cell with your code, run that cell, then the check again") from None
        called = ", ".join(f"{p} = {_describe(a)}" for p, a in zip(exercise.parameters, args))
        hint = _not_implemented_hint(err, exercise) or (explain(err, args) if explain else None)
        raise ExerciseFailed(f"{exercise.signature} raised {type(err).__name__}: {err}\n  "
                             + (f"{hint}\n  " if hint else "") + f"called with {called}\n  "
                             f"(your code's traceback is above; expected: {exercise.signature} -> "
                             f"{exercise.returns})") from err


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
    return (f"torch has no such operation for {found[1]} tensors: an integer tensor reached an operation on real "
            f"numbers. Check which of your arguments it is applied to (the categories x are integers), and that "
            f"your function takes its parameters in the order ({', '.join(exercise.parameters)})")


def _describe(value):
    if torch.is_tensor(value):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}" if value.numel() > 6 else repr(value)
    return type(value).__name__ if isinstance(value, torch.nn.Module) else repr(value)


@contextlib.contextmanager
def _isolated():
    """Gradients on and torch's CPU generator seeded inside; after, every random state that the check or the
    learner's function may have moved is as before: torch's CPU generator, CUDA's (every device) and MPS's where
    present, Python's `random` and numpy's."""
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    cpu_state, random_state, numpy_state = torch.get_rng_state(), random.getstate(), np.random.get_state()
    cuda_states = torch.cuda.get_rng_state_all() if cuda else None
    mps_state = torch.mps.get_rng_state() if mps else None
    try:
        with torch.enable_grad():
            torch.default_generator.manual_seed(0)   # the CPU's alone: torch.manual_seed would reseed every device
            yield
    finally:
        torch.set_rng_state(cpu_state)
        if cuda:
            torch.cuda.set_rng_state_all(cuda_states)
        if mps:
            torch.mps.set_rng_state(mps_state)
        random.setstate(random_state)
        np.random.set_state(numpy_state)


def _passed(exercise, fn, verified):
    """The one line of a passing check; it says so when the function checked is the package's own, as when a
    check runs before the cell defining the learner's (a notebook that imports the package's under that name)."""
    own = getattr(fn, "__func__", fn) is exercise.reference
    note = (f"; but this was the package's own {fn.__module__}.{fn.__qualname__}, not yours: run the cell that "
            f"defines your {exercise.name}, then this check again") if own else ""
    print(f"{exercise.name}: OK, {verified}{note}")


def _tensor(name, out, shape, what):
    """out, checked to be a floating-point tensor of the given shape, with a message saying what it should hold."""
    if not torch.is_tensor(out):
        raise ExerciseFailed(f"{name} must return {what}, a tensor of shape {tuple(shape)}, got a {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise ExerciseFailed(f"{name} must return {what}, shape {tuple(shape)}, got shape {tuple(out.shape)}")
    if not out.dtype.is_floating_point:
        raise ExerciseFailed(f"{name} must return {what} as floating-point numbers, got dtype {out.dtype}")
    return out


def _needs_gradient(name, out, parameters):
    if not out.requires_grad:
        raise ExerciseFailed(f"{name}'s result carries no gradient to the {parameters}: compute it with torch "
                             f"operations on them (no .item(), .detach() or numpy), or training cannot change them")


# --- notebook 1: the histogram ---------------------------------------------------------------------------------

def check_histogram_log_prob(fn):
    """Check histogram_log_prob(logits, x) -> log softmax(logits)_x, a tensor of x's shape."""
    name = "histogram_log_prob"
    exercise, call = _prepare(name, fn)
    with _isolated():
        d = 6
        logits = (2 * torch.randn(d)).requires_grad_()
        x = torch.tensor([[0, 3, 3], [5, 1, 2]])
        out = _tensor(name, call(logits, x), x.shape, "one log-probability per example, of x's shape")
        for k, in_batch in zip(x.flatten().tolist(), out.flatten().tolist()):
            alone = float(_tensor(name, call(logits, torch.tensor([k])), (1,), "one log-probability per example")[0].detach())
            if abs(alone - in_batch) > 1e-4:
                raise ExerciseFailed(
                    f"{name}: log p(x = {k}) depends on the other examples in the batch: {alone:.4f} alone, {in_batch:.4f} "
                    f"among x = {x.tolist()}. The softmax is over the wrong axis: normalize over the d categories "
                    f"(the logits' axis), then pick x's entries, not over the examples")
        categories = torch.arange(d)
        log_p = _tensor(name, call(logits, categories), (d,), "one log-probability per example")
        total = float(log_p.detach().double().exp().sum())
        if abs(total - 1) > 1e-4:
            raise ExerciseFailed(f"{name}: the probabilities of the d = {d} categories, by enumeration, sum to {total:.4f}, "
                                 f"off by {total - 1:+.4f}: p(x) = softmax(θ)_x sums to 1 for any logits θ"
                                 f"{_what_the_values_are(log_p.detach().double())}")
        expected = exercise.reference(logits, categories)
        _same(name, log_p, expected, lambda i: f"x = {i}", "θ_x − logsumexp(θ)")
        _needs_gradient(name, log_p, "logits")
        large = torch.tensor([200.0, 0.0, -200.0, 90.0])
        log_p = _tensor(name, call(large, torch.arange(4)), (4,), "one log-probability per example")
        _same(name, log_p, exercise.reference(large, torch.arange(4)), lambda i: f"x = {i}", "θ_x − logsumexp(θ)",
              f" at logits {large.tolist()}: exp(θ) overflows float32 above θ ≈ 88 and a probability below 1e-38 "
              f"rounds to 0, so compute θ_x − logsumexp(θ) in log space (torch.log_softmax), never exp(θ) or the "
              f"log of a softmax")
    _passed(exercise, fn, f"the probabilities of {d} categories sum to 1 and equal softmax(θ), each independent of "
                          f"the batch, finite at logits of ±200, with gradients to θ")


def _what_the_values_are(values):
    """What a learner's values of log p(x) over all d categories, which do not normalize, look like instead."""
    if ((values >= 0) & (values <= 1)).all() and abs(float(values.sum()) - 1) < 1e-4:
        return (". Your values themselves sum to 1: they are the probabilities softmax(θ)_x; return their log, "
                "θ_x − logsumexp(θ) (torch.log_softmax)")
    if (values >= 0).all() and abs(float((-values).exp().sum()) - 1) < 1e-4:
        return (". Your values are positive and e^(−value) sums to 1: they are −log p(x), the negative "
                "log-likelihood; return log p(x), which is at most 0 (no minus sign)")
    for base, log in ((2, "torch.log2"), (10, "torch.log10")):
        if abs(float((values * np.log(base)).exp().sum()) - 1) < 1e-4:
            return (f". {base}^value sums to 1: your values are logarithms to base {base} ({log}); return the natural "
                    f"log, θ_x − logsumexp(θ) (torch.log_softmax), in nats as the loss expects")
    if (values > 0).any():
        return (f". Yours reach {float(values.max()):.4g} at x = {int(values.argmax())}, but a log-probability is at "
                f"most 0 (a probability is at most 1): subtract logsumexp(θ) from the logits")
    return ""


def _differs(got, expected, rtol=1e-4, atol=1e-4):
    """Where got and expected are not close, compared in float64 (a learner may compute in float64)."""
    return ~torch.isclose(got.detach().double(), expected.detach().double(), rtol=rtol, atol=atol)


def _same(name, got, expected, where, formula, why=""):
    """Raise at the first entry i where the learner's log-probabilities differ from the reference's, described
    by where(i)."""
    bad = _differs(got, expected)
    if bad.any():
        i = int(bad.nonzero()[0][0])
        raise ExerciseFailed(f"{name}: log p({where(i)}) is {float(got.detach()[i]):.6g}, should be {formula} = "
                             f"{float(expected.detach()[i]):.6g}{why}")


# --- notebook 2: the discretized logistic mixture ---------------------------------------------------------------

def check_weighted_component_log_probs(fn):
    """Check weighted_component_log_probs(x, logits, means, log_scales, d) -> log π_i + log p_i(x), (*x.shape, K)."""
    name = "weighted_component_log_probs"
    exercise, call = _prepare(name, fn)
    with _isolated():
        d = 10
        logits = torch.tensor([0.3, -0.5, 0.9], requires_grad=True)
        means = torch.tensor([1.3, 4.7, 8.2], requires_grad=True)
        log_scales = torch.tensor([0.8, 1.5, 0.5]).log().requires_grad_()
        K = len(means)
        params = (logits, means, log_scales, d)
        x = torch.tensor([[0, 4, 9, 2, 2], [7, 1, 3, 8, 5]])
        _tensor(name, call(x, *params), (*x.shape, K), "log π_i + log p_i(x) for every x and component i, "
                                                        "(*x.shape, n_components)")
        categories = torch.arange(d)
        log_p = _tensor(name, call(categories, *params), (d, K), "log π_i + log p_i(x), (*x.shape, n_components)")
        _mixture_is_right(name, log_p, exercise.reference(categories, *params), logits, means, log_scales, d)
        _needs_gradient(name, log_p, "logits, means and log_scales")
        _mixture_is_stable(name, call, exercise.reference, d)
    _passed(exercise, fn, f"by enumeration each of {K} components carries its weight π_i over the d = {d} categories "
                          f"(edge bins included), the values match the package's, and stay finite at scale 1e-4")


def _mixture_is_right(name, log_p, expected, logits, means, log_scales, d):
    """Each component's d probabilities must sum to its weight, and every value must be the package's; if not,
    the first wrong entry (x, i) is named, with what is special about it."""
    got, expected = log_p.detach().double(), expected.detach().double()
    logits, means, scales = logits.detach().double(), means.detach().double(), log_scales.detach().double().exp()
    weights, sums = logits.softmax(-1), got.exp().sum(0)
    sums_right = torch.allclose(sums, weights, atol=1e-4)
    bad = _differs(got, expected)
    if sums_right and not bad.any():
        return
    if not sums_right and torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise ExerciseFailed(f"{name}: each component's probabilities sum to 1, not to its weight π_i = "
                             f"softmax(logits)_i = {[round(w, 3) for w in weights.tolist()]}: add log π_i = "
                             f"log_softmax(logits)_i")
    if sums.isnan().any():
        found = (f"by enumeration the components' probabilities sum to {[round(s, 4) for s in sums.tolist()]}, as "
                 f"some values are nan")
    elif not sums_right:
        i = int((sums - weights).abs().argmax())
        found = (f"by enumeration component {i}'s probabilities over the d = {d} categories sum to {sums[i]:.4f}, not "
                 f"its weight π_{i} = {weights[i]:.4f} (off by {sums[i] - weights[i]:+.4f}); all together "
                 f"{sums.sum():.4f} instead of 1")
    else:
        found = "each component's probabilities sum to its weight π_i, but not every value is right"
    k, i = bad.nonzero()[0].tolist()
    edge = "the edge bin 0, which takes all the mass below 0.5" if k == 0 else (
        f"the edge bin d − 1 = {k}, which takes all the mass above {d - 1.5}" if k == d - 1 else "an interior bin")
    formula = ("log π_i + log σ(u)" if k == 0 else "log π_i + log σ(−l)" if k == d - 1 else
               "log π_i + log σ(u) + log σ(−l) + log(1 − e^(−1/s))")
    mistake = _mixture_mistake(got, k, i, logits, means, log_scales.detach().double(), d)
    raise ExerciseFailed(
        f"{name}: {found}. The first wrong value is at x = {k}, {edge}, for component {i} (μ = {means[i]:.2f}, "
        f"s = {scales[i]:.2f}, π = {weights[i]:.3f}): yours is {got[k, i]:.6g}, it should be {formula} = "
        f"{expected[k, i]:.6g}, with u = (x + 0.5 − μ)/s and l = (x − 0.5 − μ)/s" + (f". {mistake}" if mistake else ""))


def _log_bins(means, scales, d, half=0.5):
    """log σ(u), log σ(−l) and the width term log(1 − e^(−2·half/s)) of each bin [x − half, x + half] and
    component, each (d, K), in float64."""
    centered = torch.arange(d, dtype=torch.float64)[:, None] - means
    width = torch.log(-torch.expm1(-2 * half / scales)).expand(d, -1)
    return F.logsigmoid((centered + half) / scales), F.logsigmoid(-(centered - half) / scales), width


def _edges_and_interior(first, interior, last):
    """A (d, K) table taking its first row from first, its last from last, the others from interior."""
    return torch.cat([first[:1], interior[1:-1], last[-1:]])


def _mixture_mistake(got, k, i, logits, means, log_scales, d):
    """What the learner's value got[k, i] at x = k, component i, is, when it is that of a known mistake."""
    log_weights, scales = logits.log_softmax(-1), log_scales.exp()
    up, down, width = _log_bins(means, scales, d)
    right = lambda up, down, width: _edges_and_interior(up, up + down + width, down)
    beyond = "the mass below 0.5, log σ(u)" if k == 0 else f"the mass above {d - 1.5}, log σ(−l)"
    mistakes = [
        (log_weights + up + down + width,
         f"The edge bin {k} should take all {beyond}; yours is the interior bins' formula, which leaves out the "
         f"tail beyond it"),
        (log_weights + _edges_and_interior(down, up + down + width, up),
         "Yours is the other edge bin's formula: the edge bins are swapped. Bin 0 takes the mass below 0.5, "
         f"log σ(u), and bin d − 1 the mass above {d - 1.5}, log σ(−l)"),
        (log_weights + _edges_and_interior(up + width, up + down + width, down + width),
         "Yours adds the width term log(1 − e^(−1/s)), which belongs to the interior bins only: there σ(u) − σ(l) "
         "= σ(u) σ(−l) (1 − e^(−1/s)), while an edge bin is σ(u) or σ(−l) alone"),
        (log_weights + _edges_and_interior(up, up + down, down),
         f"Yours lacks the width term log(1 − e^(−1/s)) = {float(width[k, i]):.4g}: σ(u) − σ(l) = σ(u) σ(−l) "
         f"(1 − e^(−1/s)), so log p_i(x) = log σ(u) + log σ(−l) + log(1 − e^(−1/s)) "
         f"(torch.log(-torch.expm1(-1 / s)))"),
        (logits + right(up, down, width),
         f"Yours adds the raw logit {float(logits[i]):.4g} where log π_i = log_softmax(logits)_i = "
         f"{float(log_weights[i]):.4g}: the weights then follow exp(logits), which sum to "
         f"{float(logits.exp().sum()):.4g}, not softmax(logits), which sums to 1"),
        (log_weights + right(*_log_bins(means, F.softplus(log_scales), d)),
         f"Yours is the value for the scale s = softplus(log_scales)_i = {float(F.softplus(log_scales[i])):.4g}: "
         f"log_scales holds log s, so s = exp(log_scales)"),
        (log_weights + right(*_log_bins(means, log_scales, d)),
         f"Yours is the value for the scale s = log_scales_i = {float(log_scales[i]):.4g}"
         + (", negative, hence the nan" if got[k, i].isnan() else "") + ": log_scales holds log s, so "
         "s = exp(log_scales)"),
        (log_weights + right(*_log_bins(means, scales, d, half=1.0)),
         "Yours is the mass of [x − 1, x + 1], but bin x is [x − 0.5, x + 0.5], so that the bins do not overlap: "
         "u = (x + 0.5 − μ)/s, l = (x − 0.5 − μ)/s"),
    ]
    for table, explanation in mistakes:   # a nan matches only a table nan where, and only where, got is
        if (torch.isclose(got, table, rtol=1e-4, atol=1e-4, equal_nan=True).all() if got[k, i].isnan()
                else torch.isclose(got[k, i], table[k, i], rtol=1e-4, atol=1e-4)):
            return explanation
    if got[k, i].isnan():
        return ("Yours is nan, the result of an invalid operation: the log of a negative number (such as σ(l) − σ(u), "
                "the difference the wrong way round), inf − inf or 0 · inf")
    return None


def _mixture_is_stable(name, call, reference, d):
    """Components far narrower than a bin, evaluated far in their tails: finite, right, with finite gradients."""
    logits = torch.zeros(3, requires_grad=True)
    means = torch.tensor([3.3, 0.2, 8.9], requires_grad=True)
    log_scales = torch.full((3,), float(np.log(1e-4)), requires_grad=True)
    categories = torch.arange(d)
    log_p = _tensor(name, call(categories, logits, means, log_scales, d), (d, 3), "log π_i + log p_i(x)")
    expected = reference(categories, logits, means, log_scales, d)
    where = lambda bad: tuple(bad.nonzero()[0].tolist())
    bad = ~torch.isfinite(log_p.detach())
    if bad.any():
        k, i = where(bad)
        raise ExerciseFailed(
            f"{name}: log-probabilities become {float(log_p.detach()[k, i])} at scale 1e-4: at x = {k}, component {i} "
            f"(μ = {means.detach()[i]:.1f}) is {abs(k - means.detach()[i].item()) / 1e-4:.0f} scales away, where σ((x ± 0.5 − μ)/s) "
            f"round to 0 or 1 in float32 and their difference to 0. Subtract in log space: σ(u) − σ(l) = "
            f"σ(u) σ(−l) (1 − e^(−1/s)), so log p = log σ(u) + log σ(−l) + log(1 − e^(−1/s)) (F.logsigmoid), "
            f"and at the edges log σ(u) or log σ(−l) alone")
    bad = _differs(log_p, expected, rtol=1e-3, atol=1e-2)
    if bad.any():
        k, i = where(bad)
        raise ExerciseFailed(
            f"{name}: at scale 1e-4, x = {k}, component {i} (μ = {means.detach()[i]:.1f}) gives {float(log_p.detach()[k, i]):.6g}, "
            f"finite but wrong: it should be {float(expected[k, i]):.6g}. Compute it in log space (log σ(u) + "
            f"log σ(−l) + log(1 − e^(−1/s))) rather than guarding the log of a difference (e.g. log(p + ε))")
    grads = torch.autograd.grad(log_p.sum(), (means, log_scales), allow_unused=True)
    if any(g is not None and not torch.isfinite(g).all() for g in grads):
        raise ExerciseFailed(f"{name}: the values are right at scale 1e-4, but their gradients are not finite, so "
                             f"training would turn the parameters into NaN: avoid operations whose gradient blows "
                             f"up there (e.g. log of a rounded difference, or torch.where over a -inf branch)")


# --- notebook 3: MADE's masks ------------------------------------------------------------------------------------

_UNLIKELY_SEED = 294158   # torch's global seed during a call: a learner's function that reseeds it changes it


def check_connectivity_numbers(fn):
    """Check connectivity_numbers(ordering, hidden_sizes, generator) -> [m0, m1, ..., mL]."""
    name = "connectivity_numbers"
    exercise, call = _prepare(name, fn, explain=_randint_bounds)
    with _isolated():
        ordering, hidden = torch.tensor([2, 0, 3, 1]), (7, 5)
        torch.default_generator.manual_seed(_UNLIKELY_SEED)
        numbers = _numbers(name, call(ordering, hidden, torch.Generator().manual_seed(0)), ordering, hidden)
        if torch.initial_seed() != _UNLIKELY_SEED:
            raise ExerciseFailed(
                f"{name} reseeds torch's global generator (torch.manual_seed({torch.initial_seed()}) or the like): "
                f"each MADE built would reset the notebook's random stream, which also initializes the weights, and "
                f"draw the same numbers whatever its seed. Remove the seeding, and draw with the generator you are "
                f"given: torch.randint(low, D, (size,), generator=generator)")
        expected_m0 = ordering.argsort() + 1
        if not torch.equal(numbers[0], expected_m0):
            mistake = " (that is ordering + 1, the dimension at each position)" if torch.equal(
                numbers[0], ordering + 1) else ""
            raise ExerciseFailed(f"{name}: m0[i] must be the position (1..D) of data dimension i in the ordering: for "
                                 f"ordering {ordering.tolist()}, m0 = {expected_m0.tolist()}, got "
                                 f"{numbers[0].tolist()}{mistake}; ordering.argsort() + 1 gives it")
        _draws_from_the_generator(name, call)
        D, hidden, draws = 5, (6, 6, 6), 400
        g = torch.Generator().manual_seed(1)
        seen = torch.zeros(D + 1, dtype=torch.bool)   # numbers of hidden layer 1 ever drawn
        for _ in range(draws):
            ordering = torch.randperm(D, generator=g)
            numbers = _numbers(name, call(ordering, hidden, g), ordering, hidden)
            _numbers_in_range(name, numbers, D)
            seen[numbers[1]] = True
        missing = [m for m in range(1, D) if not seen[m]]
        if missing:
            raise ExerciseFailed(f"{name}: over {draws} draws with D = {D}, no unit of hidden layer 1 was ever numbered "
                                 f"{missing}: every number in [min(m0), D − 1] = [1, {D - 1}] must be possible "
                                 f"(torch.randint(low, high) draws from low to high − 1)")
    _passed(exercise, fn, f"m0 are the positions in the ordering, the hidden numbers come from the generator given "
                          f"(alike for a seed, different across seeds), and in {draws} draws every hidden number lies "
                          f"in [min of the layer before, D − 1], all of them drawn")


def _randint_bounds(err, args):
    """What torch.randint's error for an empty range means here: the low bound taken from the wrong end."""
    found = re.search(r"expects 'from' to be less than 'to', but got from=(-?\d+) >= to=(-?\d+)", str(err))
    if found is None:
        return None
    low, high = int(found[1]), int(found[2])
    D = len(args[0])
    maximum = f" (with low = {low} = D, the largest number of the inputs, nothing is left)" if low == D else ""
    return (f"torch.randint(low, high) got low = {low} ≥ high = {high}, an empty range{maximum}: hidden layer l's "
            f"numbers lie in [min(m_(l−1)), D − 1], so low is the smallest number of the layer before (its minimum, "
            f"not its maximum) and high = D: torch.randint(int(numbers[-1].min()), D, (size,), generator=generator)")


def _draws_from_the_generator(name, call):
    """The hidden numbers must come from the generator given: it advances, fixes them, and other seeds change them.
    A MADE numbers all its masks with one generator seeded by its seed."""
    ordering, hidden = torch.tensor([3, 1, 0, 2, 4]), (6, 6, 6)
    g = torch.Generator().manual_seed(7)
    before = g.get_state()
    first = _numbers(name, call(ordering, hidden, g), ordering, hidden)
    second = call(ordering, hidden, torch.Generator().manual_seed(7))
    alike = all(torch.equal(a, b) for a, b in zip(first, second))
    consequence = ("MADE(seed=1) and MADE(seed=2) would get the same masks, and so would all masks of a model with "
                   "num_masks > 1")
    if torch.equal(g.get_state(), before):
        raise ExerciseFailed(
            f"{name} draws nothing from the generator it is given (its state is unchanged after the call): "
            + (f"{consequence}" if alike else "a MADE's seed would not fix its masks, which would follow whatever "
               "the notebook drew before from torch's global generator")
            + ". Draw with it: torch.randint(low, D, (size,), generator=generator), not with torch's global "
              "generator nor a new torch.Generator()")
    if not alike:
        raise ExerciseFailed(f"{name}: two generators seeded alike gave different numbers: draw only with the "
                             f"generator you are given (torch.randint(..., generator=generator)), so that a MADE's "
                             f"seed fixes its masks")
    other = call(ordering, hidden, torch.Generator().manual_seed(8))
    if all(torch.equal(a, b) for a, b in zip(first, other)):
        raise ExerciseFailed(f"{name}: generators seeded differently (7 and 8) gave the same numbers: {consequence}. "
                             f"Draw with the generator as it is given, without reseeding it (generator.manual_seed) "
                             f"or replacing it")


def _numbers(name, numbers, ordering, hidden):
    """numbers, checked to be L + 1 one-dimensional integer tensors of lengths D, *hidden."""
    lengths = [len(ordering), *hidden]
    if (not isinstance(numbers, (list, tuple)) or len(numbers) != len(lengths)
            or not all(torch.is_tensor(m) and m.dim() == 1 and m.dtype == torch.long for m in numbers)
            or [len(m) for m in numbers] != lengths):
        got = ([f"{m.dtype} {tuple(m.shape)}" if torch.is_tensor(m) else type(m).__name__ for m in numbers]
               if isinstance(numbers, (list, tuple)) else type(numbers).__name__)
        raise ExerciseFailed(f"{name} must return [m0, m1, ..., m{len(hidden)}]: {len(lengths)} one-dimensional long "
                             f"tensors (torch.long, what the model stores) of lengths {lengths} (D, then each hidden "
                             f"layer's width), got {got}")
    return numbers


def _numbers_in_range(name, numbers, D):
    for l in range(1, len(numbers)):
        low = int(numbers[l - 1].min())
        for k, m in enumerate(numbers[l].tolist()):
            if m < low:
                raise ExerciseFailed(f"{name}: hidden unit {k} of layer {l} is numbered {m}, below the smallest number "
                                     f"{low} of layer {l - 1}: it gets no input (its mask row is all zeros). Draw "
                                     f"layer {l}'s numbers in [min(m_{l - 1}), D − 1]")
            if m > D - 1:
                raise ExerciseFailed(f"{name}: hidden unit {k} of layer {l} is numbered {m}, with D = {D}: it can feed "
                                     f"no output (the output at position r reads only units numbered below r ≤ D). "
                                     f"Numbers stop at D − 1 = {D - 1}: draw in [min(m_{l - 1}), D − 1]")


def check_masks_from_numbers(fn):
    """Check masks_from_numbers(numbers) -> the L + 1 masks (out, in) of connectivity numbers [m0, ..., mL]."""
    name = "masks_from_numbers"
    exercise, call = _prepare(name, fn)
    with _isolated():
        g = torch.Generator().manual_seed(0)
        cases = [connectivity_numbers(torch.tensor([2, 0, 3, 1]), (6, 6), g),
                 connectivity_numbers(torch.randperm(5, generator=g), (8,), g),
                 connectivity_numbers(torch.tensor([1, 2, 0]), (), g)]   # no hidden layer: the direct connections
        for numbers in cases:
            given = [m.clone() for m in numbers]
            masks = call(given)
            _unchanged(name, given, numbers)
            masks = _masks(name, masks, numbers)
            for l, expected in enumerate(exercise.reference(numbers)):
                _same_mask(name, l, masks, expected.bool(), numbers)
    _passed(exercise, fn, "every mask keeps exactly the connections m_out ≥ m_in (hidden) and m0 > m_L (outputs), "
                          "also without hidden layers, so output r reads only inputs before r in the ordering")


def _unchanged(name, given, numbers):
    """The numbers the learner's function was given, which must be as they were: a MADE passes its own."""
    changed = [l for l, m in enumerate(numbers) if l >= len(given) or not torch.equal(given[l], m)]
    if changed or len(given) != len(numbers):
        l = changed[0] if changed else len(numbers)
        now = given[l].tolist() if l < len(given) and torch.is_tensor(given[l]) else "gone"
        raise ExerciseFailed(f"{name} changed the numbers it was given: numbers[{l}] was "
                             f"{numbers[l].tolist() if l < len(numbers) else 'absent'}, is {now} after the call. An "
                             f"in-place operation (numbers[{l}] -= 1, +=, or an assignment into numbers or "
                             f"numbers[{l}][...]) edits the model's own numbers, and masks computed after it use the "
                             f"edited ones: compute with new tensors (numbers[{l}] - 1) instead")


def _masks(name, masks, numbers):
    """masks, checked to be L + 1 tensors (out, in) of zeros and ones, as bool."""
    shapes = [(len(m_out), len(m_in)) for m_in, m_out in zip(numbers, [*numbers[1:], numbers[0]])]
    if (not isinstance(masks, (list, tuple)) or len(masks) != len(shapes)
            or not all(torch.is_tensor(m) and tuple(m.shape) == s for m, s in zip(masks, shapes))):
        got = ([tuple(m.shape) if torch.is_tensor(m) else type(m).__name__ for m in masks]
               if isinstance(masks, (list, tuple)) else type(masks).__name__)
        raise ExerciseFailed(f"{name} must return L + 1 = {len(shapes)} masks of shapes {shapes} (out, in: one row per "
                             f"unit of the layer above) for numbers of lengths {[len(m) for m in numbers]}, got {got}")
    for l, m in enumerate(masks):
        if not ((m == 0) | (m == 1)).all():
            raise ExerciseFailed(f"{name}: mask {l} must hold only 0 and 1 (keep a weight or not), got values "
                                 f"{m.unique().tolist()[:6]}")
    return [m.bool() for m in masks]


def _same_mask(name, l, masks, expected, numbers):
    """Raise at the first weight that mask l keeps or drops wrongly, naming the mask, the units, the rule and,
    where it is one, the mistake; then what the outputs can see as it is."""
    got, L = masks[l], len(numbers) - 1
    diff = got != expected
    if not diff.any():
        return
    k, j = diff.nonzero()[0].tolist()
    m_in, m_out = numbers[l], (numbers[l + 1] if l < L else numbers[0])
    layer = lambda l: "the inputs" if l == 0 else f"hidden layer {l}"
    what = f"mask {l} ({layer(l)} → " + (f"{layer(l + 1)})" if l < L else "the outputs: the output mask)")
    below = f"input {j}" if l == 0 else f"unit {j} of hidden layer {l}"
    above = f"output {k}" if l == L else f"unit {k} of hidden layer {l + 1}"
    rule = (f"m0[i] > m{L}[k], strictly: output i reads only units numbered below its position" if l == L else
            f"m{l + 1}[k] ≥ m{l}[j]: a unit reads the units below numbered up to its own number")
    mistake = _mask_mistake(got, l, numbers)
    raise ExerciseFailed(f"{name}: {what} {'keeps' if got[k, j] else 'drops'} the weight from {below} (number "
                         f"{int(m_in[j])}) to {above} (number {int(m_out[k])}); it should keep exactly the weights "
                         f"with {rule}{'. ' + mistake if mistake else ''}{_what_outputs_see(masks, numbers)}")


def _mask_mistake(got, l, numbers):
    """The known mistake that mask l of the learner is, if it is one."""
    L = len(numbers) - 1
    m_in, m_out = numbers[l], (numbers[l + 1] if l < L else numbers[0])
    strict = l == L
    rule, code = (">", ">") if strict else ("≥", ">=")
    reversed_ = (f"It compares the other way round (m_in {rule} m_out): row k, a unit of the layer above, keeps the "
                 f"weight from column j, a unit below, when m_out[k] {rule} m_in[j]: "
                 f"m_out[:, None] {code} m_in[None, :]")
    mistakes = [(m_in[None, :] >= m_out[:, None], reversed_), (m_in[None, :] > m_out[:, None], reversed_)]
    if l < L:
        mistakes.append((m_out[:, None] > m_in[None, :],
                         "It is strict (>), but a hidden unit numbered m may read every unit numbered up to m "
                         "(≥): only the output mask is strict"))
    else:
        mistakes.append((m_out[:, None] >= m_in[None, :],
                         "It is not strict (≥): output i would read hidden units numbered m0[i], which see input i "
                         "itself; the output mask keeps m0[i] > m_L[k] (>, not ≥)"))
        mistakes += [(m_out[:, None] > numbers[other][None, :],
                      f"It compares m0 with the numbers of {'the inputs' if other == 0 else f'hidden layer {other}'} "
                      f"(numbers[{other}]), but the output mask reads the last hidden layer: compare with numbers[-1]")
                     for other in range(L) if len(numbers[other]) == len(m_in)]
    return next((explanation for mask, explanation in mistakes if torch.equal(got, mask)), None)


def _what_outputs_see(masks, numbers):
    """What the learner's masks let the outputs see (the product of the masks), when it breaks the autoregressive
    property."""
    m0 = numbers[0]
    bad = reachability(masks) & (m0[None, :] >= m0[:, None])
    if not bad.any():
        return ""
    i, j = bad.nonzero()[0].tolist()
    if i == j:
        return f". As it is, output {i} can see input {i}, its own dimension: p(x_{i} | ...) would read x_{i}"
    return (f". As it is, output {i} (position {int(m0[i])} in the ordering) can see input {j} (position "
            f"{int(m0[j])}), which does not come before it: p(x_{i} | ...) would read x_{j}")


# --- notebook 4: MADE's Bernoulli log-likelihood and its sampler ----------------------------------------------------

def check_bernoulli_log_prob(fn):
    """Check bernoulli_log_prob(logits, x) -> log p(x_i | x_<i) = x log σ(ℓ) + (1 − x) log σ(−ℓ), elementwise."""
    name = "bernoulli_log_prob"
    exercise, call = _prepare(name, fn)
    with _isolated():
        logits = (3 * torch.randn(3, 4)).requires_grad_()
        x = torch.randint(0, 2, (3, 4))
        _tensor(name, call(logits, x), logits.shape, "one log-probability per bit, of the logits' shape")
        grid = torch.linspace(-6, 6, 13).requires_grad_()
        ones = _tensor(name, call(grid, torch.ones(13, dtype=torch.long)), grid.shape, "one log-probability per bit")
        zeros = _tensor(name, call(grid, torch.zeros(13, dtype=torch.long)), grid.shape, "one log-probability per bit")
        total = (ones.detach().double().exp() + zeros.detach().double().exp())
        if not torch.allclose(total, torch.ones_like(total), atol=1e-4):
            i = int((total - 1).abs().argmax())
            raise ExerciseFailed(f"{name}: p(x = 0) + p(x = 1) = {total[i]:.4f} at logit {grid[i]:.1f}, not 1 (off by "
                                 f"{total[i] - 1:+.4f}): with p(x = 1) = σ(ℓ), p(x = 0) = 1 − σ(ℓ) = σ(−ℓ)")
        if not _differs(ones, F.logsigmoid(-grid), rtol=1e-5).any():   # torch.allclose's tolerances
            raise ExerciseFailed(f"{name}: x = 1 gets log σ(−ℓ), the probability of x = 0: the logit is that of x = 1, "
                                 f"p(x_i = 1 | x_<i) = σ(ℓ_i)")
        _same(name, ones, exercise.reference(grid, torch.ones(13, dtype=torch.long)),
              lambda i: f"x = 1 | logit {grid[i]:.1f}", "log σ(ℓ)")
        _needs_gradient(name, ones, "logits")
        _large_logits(name, call, exercise.reference)
        made = MADE((4,), 2, [8], ordering=[2, 0, 3, 1], bernoulli_log_prob=fn)
        with torch.no_grad():
            for p in made.parameters():
                p.normal_(0, 1)
            total = float(made.probability_table().double().sum())
        if abs(total - 1) > 1e-4:
            raise ExerciseFailed(f"{name}: by enumeration, a MADE with D = 4 using your function gives its 16 images "
                                 f"a total probability of {total:.4f}, not 1")
    _passed(exercise, fn, "p(x = 0) + p(x = 1) = 1 with p(x = 1) = σ(ℓ), right with their gradients at logits up to "
                          "±100, and a MADE using it gives its 16 images probabilities summing to 1")


def _large_logits(name, call, reference):
    """Values and gradients at logits where σ(ℓ) rounds to 0 or 1 in float32 (|ℓ| ≳ 17) and at a moderate one."""
    large = torch.tensor([-100.0, -40.0, -17.0, -5.0, 5.0, 17.0, 40.0, 100.0])
    calls = []
    for bit in (1, 0):
        logits, bits = large.clone().requires_grad_(), torch.full(large.shape, bit)
        log_p = _tensor(name, call(logits, bits), large.shape, "one log-probability per bit")
        calls.append((bit, logits, log_p))
        expected = reference(large, bits)
        bad = _differs(log_p, expected)
        if bad.any():
            i = int(bad.nonzero()[0])
            value = float(log_p.detach()[i])
            cause = ("−100 is the floor of F.binary_cross_entropy, which clamps its logs there; from σ(ℓ) it cannot do "
                     "better, as σ(ℓ) rounds to 0 or 1 in float32 (σ(17) = 1.0). Work from the logits: "
                     "−F.binary_cross_entropy_with_logits(logits, x) or F.logsigmoid" if value == -100 else
                     "σ(ℓ) rounds to 0 or 1 in float32 beyond |ℓ| ≈ 17 (σ(17) = 1.0), so compute log σ(ℓ) without "
                     "forming σ(ℓ): F.logsigmoid(ℓ) for x = 1 and log(1 − σ(ℓ)) = F.logsigmoid(−ℓ) for x = 0 (and "
                     "0 · (−inf) is nan)")
            raise ExerciseFailed(f"{name}: log p(x = {bit}) at logit {large[i]:.0f} is {value:.6g}, should be "
                                 f"{float(expected[i]):.6g}: {cause}")
    for bit, logits, log_p in calls:   # the values are right: their gradients
        grad = torch.autograd.grad(log_p.sum(), logits, allow_unused=True)[0]
        expected_grad = bit - torch.sigmoid(large)   # d/dℓ of x log σ(ℓ) + (1 − x) log σ(−ℓ)
        bad = torch.ones_like(large, dtype=torch.bool) if grad is None else _differs(grad, expected_grad)
        if bad.any():
            i = int(bad.nonzero()[0])
            got = 0.0 if grad is None else float(grad[i])
            raise ExerciseFailed(f"{name}: log p(x = {bit}) is right at logit {large[i]:.0f}, but its gradient there "
                                 f"is {got:.4g}, should be x − σ(ℓ) = {float(expected_grad[i]):.4g}: training would "
                                 f"get a wrong signal from confident logits. Compute from the logits with F.logsigmoid, "
                                 f"without clamping or detaching, nor a torch.where whose unused branch overflows (its "
                                 f"nan gradient leaks through)")


def check_sample_plain(fn):
    """Check sample_plain(model, u, mask_id, given, known) -> x (n, D): exact samples in the ordering of the mask."""
    name = "sample_plain"
    exercise, call = _prepare(name, fn)
    with _isolated():
        # two masks, with orderings [2, 0, 1] and [2, 1, 0]: sampled with mask 1, which a sampler must be told
        model = MADE((3,), 3, [16], ordering="random", num_masks=2, seed=0)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 1.5)   # far from uniform, and each dimension strongly dependent on the earlier ones
        model.eval()
        D, d, n, mask_id = model.D, model.d, 20000, 1
        ordering, nothing_known = model.orderings[mask_id].tolist(), [False] * D
        u = torch.rand(n, D)
        with torch.no_grad():
            x = _samples(name, call(model, u, mask_id, None, nothing_known), n, model)
            grid = torch.cartesian_prod(*[torch.arange(d)] * D)   # row-major: row c is the x coded c
            probabilities = model._log_likelihoods(grid, [mask_id])[0].double().exp()
        if (x == x[0]).all():
            raise ExerciseFailed(f"{name}: all {n} samples are x = {x[0].tolist()}, whatever the uniforms u: taking "
                                 f"the most likely category of each dimension (argmax) is not sampling. Draw each from "
                                 f"its distribution with model._categories(logits[:, dim], u[:, dim])")
        counts = torch.bincount((x * d ** torch.arange(D - 1, -1, -1)).sum(1), minlength=d ** D).double()
        statistic, dof, p_value = _chi_square(counts, n * probabilities)
        if p_value < 1e-4:
            worst = int(((counts - n * probabilities).abs() / (n * probabilities).sqrt()).argmax())
            with torch.no_grad():
                of_mask_0 = torch.equal(x, exercise.reference(model, u, 0, None, nothing_known))
            fix = (f"They are the samples of mask 0 (ordering {model.orderings[0].tolist()}) from the same uniforms: "
                   f"your sampler ignores mask_id. Draw in the ordering model.orderings[mask_id], from the logits "
                   f"model(x, mask_id)" if of_mask_0 else
                   "Draw the dimensions in the ordering of mask mask_id, model.orderings[mask_id], each from a "
                   "forward pass model(x, mask_id) on the dimensions drawn so far")
            raise ExerciseFailed(
                f"{name}: the samples do not follow the model: on a MADE with D = {D}, d = {d} and two masks, with "
                f"mask_id = {mask_id} (ordering {ordering}), {n} samples give chi-square = {statistic:.3g} with {dof} "
                f"degrees of freedom (p = {p_value:.1e}); x = {grid[worst].tolist()} was drawn "
                f"{counts[worst] / n:.3g} of the time against p(x) = {probabilities[worst]:.3g}. {fix}")
        few = u[:200]
        for j in range(model.num_masks):
            with torch.no_grad():
                mine, expected = call(model, few, j, None, nothing_known), exercise.reference(model, few, j, None,
                                                                                              nothing_known)
            if not torch.equal(mine, expected):
                raise ExerciseFailed(f"{name}: the samples follow the model but differ from the package's from the "
                                     f"same uniforms u (with mask_id = {j}): draw dimension dim with "
                                     f"model._categories(logits, u[:, dim]) (the value at which the cumulative "
                                     f"probability first exceeds u), so that your sampler and MADE.sample's fast one "
                                     f"give the same samples from the same u")
        first = ordering[0]
        known = [dim == first for dim in range(D)]
        given = torch.randint(0, d, (200, D))
        with torch.no_grad():
            mine = _samples(name, call(model, few, mask_id, given, known), 200, model)
            expected = exercise.reference(model, few, mask_id, given, known)
        wrong = int((mine[:, first] != given[:, first]).sum())
        if wrong:
            raise ExerciseFailed(f"{name}: dimension {first} is known (known[{first}] is True), but x[:, {first}] differs "
                                 f"from given[:, {first}] in {wrong} of 200 samples: copy the known dimensions from given")
        if not torch.equal(mine, expected):
            raise ExerciseFailed(f"{name}: with dimension {first} known, the other dimensions differ from the package's "
                                 f"samples from the same uniforms: put the known value into x before the forward passes "
                                 f"of the later dimensions, so that they are drawn given it")
    _passed(exercise, fn, f"{n} samples of mask {mask_id} of a MADE with two orderings ({ordering} for this one) "
                          f"follow its distribution (chi-square p = {p_value:.2f}), equal the package's from the same "
                          f"uniforms with either mask, and copy known dimensions")


def _samples(name, x, n, model):
    if not torch.is_tensor(x) or tuple(x.shape) != (n, model.D) or x.dtype != torch.long:
        got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
        raise ExerciseFailed(f"{name} must return x, a long tensor (n, D) = ({n}, {model.D}), got a {got}")
    if int(x.min()) < 0 or int(x.max()) > model.d - 1:
        raise ExerciseFailed(f"{name} must return categories in [0, d − 1] = [0, {model.d - 1}], got values in "
                             f"[{int(x.min())}, {int(x.max())}]")
    return x


def _chi_square(counts, expected):
    """Pearson's statistic, its degrees of freedom and p-value; cells expecting fewer than 5 are pooled."""
    small = expected < 5
    counts = torch.cat([counts[~small], counts[small].sum(0, keepdim=True)]) if small.any() else counts
    expected = torch.cat([expected[~small], expected[small].sum(0, keepdim=True)]) if small.any() else expected
    statistic = float(((counts - expected) ** 2 / expected).sum())
    dof = len(counts) - 1
    return statistic, dof, float(torch.special.gammaincc(torch.tensor(dof / 2), torch.tensor(statistic / 2)))
