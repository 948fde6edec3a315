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
        hint = _dtype_hint(err, exercise) or (explain(err, args) if explain else None)
        raise ExerciseFailed(f"{exercise.signature} raised {type(err).__name__}: {err}\n  "
                             + (f"{hint}\n  " if hint else "") + f"called with {called}\n  "
                             f"(your code's traceback is above; expected: {exercise.signature} -> "
                             f"{exercise.returns})") from err


def _is_the_stub(err, fn):
    """Whether err is the stub's bare `raise NotImplementedError`, raised in fn's own frame: torch raises
    NotImplementedError too, with a message, for an operation a dtype lacks (log_softmax of a long tensor)."""
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    while isinstance(fn, functools.partial):
        fn = fn.func
    return not err.args and tb.tb_frame.f_code is getattr(inspect.unwrap(fn), "__code__", None)


def _dtype_hint(err, exercise):
    """What torch's NotImplementedError for an operation a dtype lacks means in a learner's function."""
    found = re.search(r"not implemented for '(\w+)'", str(err)) if isinstance(err, NotImplementedError) else None
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
                                 f"off by {total - 1:+.4f}: p(x) = softmax(θ)_x sums to 1 for any logits θ")
        expected = exercise.reference(logits, categories)
        _same(name, log_p, expected, lambda i: f"x = {i}", "θ_x − logsumexp(θ)")
        _needs_gradient(name, log_p, "logits")
        large = torch.tensor([200.0, 0.0, -200.0, 90.0])
        log_p = _tensor(name, call(large, torch.arange(4)), (4,), "one log-probability per example")
        _same(name, log_p, exercise.reference(large, torch.arange(4)), lambda i: f"x = {i}", "θ_x − logsumexp(θ)",
              f" at logits {large.tolist()}: exp(θ) overflows float32 above θ ≈ 88 and a probability below 1e-38 "
              f"rounds to 0, so compute θ_x − logsumexp(θ) in log space (torch.log_softmax), never exp(θ) or the "
              f"log of a softmax")
    _passed(exercise, fn, f"the probabilities of {d} categories sum to 1 and equal softmax(θ), each independent of the batch, "
                          f"finite at logits of ±200, with gradients to θ")


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
        _mixture_sums_to_weights(name, log_p, logits, means, log_scales, d)
        expected = exercise.reference(categories, *params)
        bad = _differs(log_p, expected)
        if bad.any():
            k, i = bad.nonzero()[0].tolist()
            raise ExerciseFailed(
                f"{name}: at x = {k}, component {i} (μ = {means.detach()[i]:.2f}, s = {log_scales.detach()[i].exp():.2f}) gives "
                f"{float(log_p.detach()[k, i]):.6g}, should be log π_i + log[σ((x + 0.5 − μ)/s) − σ((x − 0.5 − μ)/s)] = "
                f"{float(expected.detach()[k, i]):.6g}")
        _needs_gradient(name, log_p, "logits, means and log_scales")
        _mixture_is_stable(name, call, exercise.reference, d)
    _passed(exercise, fn, f"by enumeration each of {K} components carries its weight π_i over the d = {d} categories (edge "
                          f"bins included), the values match the package's, and stay finite at scale 1e-4")


def _mixture_sums_to_weights(name, log_p, logits, means, log_scales, d):
    """Each component's d probabilities must sum to its weight; a missing edge bin is named."""
    p = log_p.detach().double().exp()
    weights = logits.detach().double().softmax(-1)
    sums = p.sum(0)
    if torch.allclose(sums, weights, atol=1e-4):
        return
    means, scales = means.detach().double(), log_scales.detach().double().exp()
    interior = lambda x: weights * (torch.sigmoid((x + 0.5 - means) / scales) - torch.sigmoid((x - 0.5 - means) / scales))
    if torch.allclose(p[0], interior(0), rtol=1e-3, atol=1e-7):
        raise ExerciseFailed(f"{name}: the edge bin 0 should take all the mass below 0.5: p_i(0) = σ((0.5 − μ_i)/s_i), "
                             f"not σ((0.5 − μ_i)/s_i) − σ((−0.5 − μ_i)/s_i); by enumeration the components sum to "
                             f"{sums.sum():.4f} instead of 1")
    if torch.allclose(p[d - 1], interior(d - 1), rtol=1e-3, atol=1e-7):
        raise ExerciseFailed(f"{name}: the edge bin d − 1 = {d - 1} should take all the mass above {d - 1.5}: "
                             f"p_i({d - 1}) = 1 − σ(({d - 1.5} − μ_i)/s_i) = σ((μ_i − {d - 1.5})/s_i); by "
                             f"enumeration the components sum to {sums.sum():.4f} instead of 1")
    if torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise ExerciseFailed(f"{name}: each component's probabilities sum to 1, not to its weight π_i = "
                             f"softmax(logits)_i = {[round(w, 3) for w in weights.tolist()]}: add log π_i = "
                             f"log_softmax(logits)_i")
    i = int((sums - weights).abs().argmax())
    raise ExerciseFailed(f"{name}: by enumeration component {i}'s probabilities over the d = {d} categories sum to "
                         f"{sums[i]:.4f}, not its weight π_{i} = {weights[i]:.4f} (off by {sums[i] - weights[i]:+.4f}); "
                         f"all together {sums.sum():.4f} instead of 1")


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

def check_connectivity_numbers(fn):
    """Check connectivity_numbers(ordering, hidden_sizes, generator) -> [m0, m1, ..., mL]."""
    name = "connectivity_numbers"
    exercise, call = _prepare(name, fn)
    with _isolated():
        ordering, hidden = torch.tensor([2, 0, 3, 1]), (7, 5)
        numbers = _numbers(name, call(ordering, hidden, torch.Generator().manual_seed(0)), ordering, hidden)
        expected_m0 = ordering.argsort() + 1
        if not torch.equal(numbers[0], expected_m0):
            mistake = " (that is ordering + 1, the dimension at each position)" if torch.equal(
                numbers[0], ordering + 1) else ""
            raise ExerciseFailed(f"{name}: m0[i] must be the position (1..D) of data dimension i in the ordering: for "
                                 f"ordering {ordering.tolist()}, m0 = {expected_m0.tolist()}, got "
                                 f"{numbers[0].tolist()}{mistake}; ordering.argsort() + 1 gives it")
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
        ordering = torch.tensor([3, 1, 0, 2, 4])
        first, second = (call(ordering, hidden, torch.Generator().manual_seed(7)) for _ in range(2))
        if not all(torch.equal(a, b) for a, b in zip(first, second)):
            raise ExerciseFailed(f"{name}: two generators seeded alike gave different numbers: draw with the generator "
                                 f"you are given (torch.randint(..., generator=generator)), so that a MADE's seed "
                                 f"fixes its masks")
    _passed(exercise, fn, f"m0 are the positions in the ordering, and in {draws} draws every hidden number lies in "
                          f"[min of the layer before, D − 1], all of them drawn, reproducibly from the generator")


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
            masks = _masks(name, call([m.clone() for m in numbers]), numbers)
            _autoregressive(name, masks, numbers)
            for l, (got, expected) in enumerate(zip(masks, exercise.reference(numbers))):
                _same_mask(name, l, len(numbers) - 1, got, expected.bool(), numbers)
    _passed(exercise, fn, "output r reads only inputs before r in the ordering (the product of the masks), and every mask "
                          "keeps exactly the connections m_out ≥ m_in (hidden) and m0 > m_L (outputs), also without hidden layers")


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


def _autoregressive(name, masks, numbers):
    """No path from an input to an output at the same or an earlier position (the product of the masks)."""
    m0 = numbers[0]
    reach = reachability(masks)
    bad = reach & (m0[None, :] >= m0[:, None])
    if bad.any():
        i, j = bad.nonzero()[0].tolist()
        if i == j:
            raise ExerciseFailed(f"{name}: output {i} can see input {i}, its own dimension: the output mask must be "
                                 f"strict, keeping a weight from hidden unit k to output i only when m0[i] > m_L[k]")
        raise ExerciseFailed(f"{name}: output {i} (position {int(m0[i])} in the ordering) can see input {j} (position "
                             f"{int(m0[j])}), which does not come before it: p(x_{i} | ...) would read x_{j}")


def _same_mask(name, l, L, got, expected, numbers):
    diff = got != expected
    if not diff.any():
        return
    k, j = diff.nonzero()[0].tolist()
    m_in, m_out = numbers[l], (numbers[l + 1] if l < L else numbers[0])
    below = f"input {j}" if l == 0 else f"unit {j} of hidden layer {l}"
    above = f"output {k}" if l == L else f"unit {k} of hidden layer {l + 1}"
    rule = "m0[i] > m_L[k], strictly" if l == L else "m_out ≥ m_in"
    state = "keeps" if got[k, j] else "drops"
    raise ExerciseFailed(f"{name}: mask {l} {state} the weight from {below} (number {int(m_in[j])}) to {above} "
                         f"(number {int(m_out[k])}); it should keep exactly the weights with {rule}")


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
        large = torch.tensor([-100.0, 100.0, -100.0, 100.0])
        bits = torch.tensor([1, 0, 0, 1])
        log_p = _tensor(name, call(large, bits), large.shape, "one log-probability per bit")
        expected = exercise.reference(large, bits)
        bad = _differs(log_p, expected)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ExerciseFailed(f"{name}: log p(x = {int(bits[i])}) at logit {large[i]:.0f} is {float(log_p.detach()[i])}, "
                                 f"should be {float(expected[i]):.6g}: σ(±100) rounds to 0 or 1 in float32, so compute "
                                 f"log σ(ℓ) without forming σ(ℓ): F.logsigmoid(ℓ) for x = 1 and "
                                 f"log(1 − σ(ℓ)) = F.logsigmoid(−ℓ) for x = 0 (and 0 · (−inf) is nan)")
        made = MADE((4,), 2, [8], ordering=[2, 0, 3, 1], bernoulli_log_prob=fn)
        with torch.no_grad():
            for p in made.parameters():
                p.normal_(0, 1)
            total = float(made.probability_table().double().sum())
        if abs(total - 1) > 1e-4:
            raise ExerciseFailed(f"{name}: by enumeration, a MADE with D = 4 using your function gives its 16 images "
                                 f"a total probability of {total:.4f}, not 1")
    _passed(exercise, fn, "p(x = 0) + p(x = 1) = 1 with p(x = 1) = σ(ℓ), finite at logits of ±100, with gradients, and a "
                          "MADE using it gives its 16 images probabilities summing to 1")


def check_sample_plain(fn):
    """Check sample_plain(model, u, mask_id, given, known) -> x (n, D): exact samples in the model's ordering."""
    name = "sample_plain"
    exercise, call = _prepare(name, fn)
    with _isolated():
        model = MADE((3,), 3, [16], ordering=[2, 0, 1])
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 1.5)   # far from uniform, and each dimension strongly dependent on the earlier ones
        model.eval()
        D, d, n = model.D, model.d, 20000
        nothing_known = [False] * D
        u = torch.rand(n, D)
        with torch.no_grad():
            x = _samples(name, call(model, u, 0, None, nothing_known), n, model)
            probabilities = model.probability_table().double().flatten()   # row-major: entry c is the x coded c
        counts = torch.bincount((x * d ** torch.arange(D - 1, -1, -1)).sum(1), minlength=d ** D).double()
        statistic, dof, p_value = _chi_square(counts, n * probabilities)
        if p_value < 1e-4:
            worst = int(((counts - n * probabilities).abs() / (n * probabilities).sqrt()).argmax())
            raise ExerciseFailed(
                f"{name}: the samples do not follow the model: on a MADE with D = {D}, d = {d} and ordering "
                f"{model.orderings[0].tolist()}, {n} samples give chi-square = {statistic:.0f} with {dof} degrees of "
                f"freedom (p = {p_value:.1e}); x = {[int(i) for i in np.unravel_index(worst, (d,) * D)]} was drawn "
                f"{counts[worst] / n:.3g} of the time "
                f"against p(x) = {probabilities[worst]:.3g}. Draw the dimensions in the model's ordering, "
                f"model.orderings[mask_id], each from a forward pass on the dimensions drawn so far")
        few = u[:200]
        with torch.no_grad():
            mine, expected = call(model, few, 0, None, nothing_known), exercise.reference(model, few, 0, None, nothing_known)
        if not torch.equal(mine, expected):
            raise ExerciseFailed(f"{name}: the samples follow the model but differ from the package's from the same "
                                 f"uniforms u: draw dimension dim with model._categories(logits, u[:, dim]) (the value "
                                 f"at which the cumulative probability first exceeds u), so that your sampler and "
                                 f"MADE.sample's fast one give the same samples from the same u")
        first = int(model.orderings[0][0])
        known = [dim == first for dim in range(D)]
        given = torch.randint(0, d, (200, D))
        with torch.no_grad():
            mine = _samples(name, call(model, few, 0, given, known), 200, model)
            expected = exercise.reference(model, few, 0, given, known)
        wrong = int((mine[:, first] != given[:, first]).sum())
        if wrong:
            raise ExerciseFailed(f"{name}: dimension {first} is known (known[{first}] is True), but x[:, {first}] differs "
                                 f"from given[:, {first}] in {wrong} of 200 samples: copy the known dimensions from given")
        if not torch.equal(mine, expected):
            raise ExerciseFailed(f"{name}: with dimension {first} known, the other dimensions differ from the package's "
                                 f"samples from the same uniforms: put the known value into x before the forward passes "
                                 f"of the later dimensions, so that they are drawn given it")
    _passed(exercise, fn, f"{n} samples of a MADE with ordering {model.orderings[0].tolist()} follow its distribution "
                          f"(chi-square p = {p_value:.2f}), equal the package's from the same uniforms, and copy known dimensions")


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
