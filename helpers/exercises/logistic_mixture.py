"""The checks of notebook 2's exercises: the discretized logistic mixture's weighted component log-probabilities,
and the course's answer q1_b."""

import numpy as np
import torch
import torch.nn.functional as F

from .harness import (
    ExerciseFailed,
    check_1d_answer,
    differs,
    gradients_match,
    isolated,
    needs_gradient,
    passed,
    prepare,
    tensor_result,
)


def check_weighted_component_log_probs(fn):
    """Check weighted_component_log_probs(x, logits, means, log_scales, d) -> log π_i + log p_i(x), (*x.shape, K)."""
    name = "weighted_component_log_probs"
    exercise, call = prepare(name, fn)
    with isolated():
        d = 10
        logits = torch.tensor([0.3, -0.5, 0.9], requires_grad=True)
        means = torch.tensor([1.3, 4.7, 8.2], requires_grad=True)
        log_scales = torch.tensor([0.8, 1.5, 0.5]).log().requires_grad_()
        K = len(means)
        params = (logits, means, log_scales, d)
        x = torch.tensor([[0, 4, 9, 2, 2], [7, 1, 3, 8, 5]])
        tensor_result(
            name,
            call(x, *params),
            (*x.shape, K),
            "log π_i + log p_i(x) for every x and component i, (*x.shape, n_components)",
        )
        categories = torch.arange(d)
        log_p = tensor_result(
            name, call(categories, *params), (d, K), "log π_i + log p_i(x), (*x.shape, n_components)"
        )
        _mixture_is_right(name, log_p, exercise.reference(categories, *params), logits, means, log_scales, d)
        _edges_are_0_and_d_minus_1(name, call, params, log_p)
        needs_gradient(name, log_p, "logits, means and log_scales")
        gradients_match(
            name,
            log_p,
            exercise.reference(categories, *params),
            {"logits": logits, "means": means, "log_scales": log_scales},
            lambda parameter: _detached(parameter),
        )
        _mixture_is_stable(name, call, exercise.reference, d)
    passed(
        exercise,
        fn,
        f"by enumeration each of {K} components carries its weight π_i over the d = {d} categories "
        f"(edge bins 0 and d − 1 included, also in a batch without them), the values and their gradients to "
        f"the logits, means and log-scales match the package's, and stay finite at scale 1e-4",
    )


def _detached(parameter):
    return {
        "logits": " (the weights π = softmax(logits) must be trained too: log_softmax(logits), not of logits.data)",
        "log_scales": " (s = exp(log_scales) with torch.exp, not np.exp of a numpy copy)",
        "means": "",
    }[parameter]


def _edges_are_0_and_d_minus_1(name, call, params, enumerated):
    """In a batch holding neither 0 nor d − 1, every value must be that of its category in the enumeration: the
    edge bins are the categories 0 and d − 1, not the batch's smallest and largest values."""
    d = params[-1]
    x = torch.tensor([[2, 5], [7, 3]])
    log_p = tensor_result(name, call(x, *params), (*x.shape, len(params[0])), "log π_i + log p_i(x)")
    expected = enumerated.detach()[x]
    bad = differs(log_p, expected)
    if not bad.any():
        return
    k = int(x[bad.any(-1)][0])
    at_batch_edges = bool((x[bad.any(-1)] == x.min()).any() or (x[bad.any(-1)] == x.max()).any())
    raise ExerciseFailed(
        f"{name}: in the batch x = {x.tolist()}, which holds neither 0 nor d − 1 = {d - 1}, x = {k} gets "
        f"{[round(v, 4) for v in log_p.detach()[x == k][0].tolist()]}, but the same category among all d gets "
        f"{[round(v, 4) for v in expected[x == k][0].tolist()]}: a value's probability must not depend on the "
        f"batch"
        + (
            f". x = {k} is the batch's "
            f"{'smallest' if k == int(x.min()) else 'largest'} value, treated as an edge bin: the edge bins are "
            f"the categories 0 and d − 1 whatever the batch holds, so compare x with 0 and d − 1, not with the "
            f"batch's minimum and maximum"
            if at_batch_edges
            else ""
        )
    )


def _mixture_is_right(name, log_p, expected, logits, means, log_scales, d):
    """Each component's d probabilities must sum to its weight, and every value must be the package's; if not,
    the first wrong entry (x, i) is named, with what is special about it."""
    got, expected = log_p.detach().double(), expected.detach().double()
    logits, means, scales = (
        logits.detach().double(),
        means.detach().double(),
        log_scales.detach().double().exp(),
    )
    weights, sums = logits.softmax(-1), got.exp().sum(0)
    sums_right = torch.allclose(sums, weights, atol=1e-4)
    bad = differs(got, expected)
    if sums_right and not bad.any():
        return
    if not sums_right and torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
        raise ExerciseFailed(
            f"{name}: each component's probabilities sum to 1, not to its weight π_i = "
            f"softmax(logits)_i = {[round(w, 3) for w in weights.tolist()]}: add log π_i = "
            f"log_softmax(logits)_i"
        )
    if sums.isnan().any():
        found = (
            f"by enumeration the components' probabilities sum to {[round(s, 4) for s in sums.tolist()]}, as "
            f"some values are nan"
        )
    elif not sums_right:
        i = int((sums - weights).abs().argmax())
        found = (
            f"by enumeration component {i}'s probabilities over the d = {d} categories sum to {sums[i]:.4f}, not "
            f"its weight π_{i} = {weights[i]:.4f} (off by {sums[i] - weights[i]:+.4f}); all together "
            f"{sums.sum():.4f} instead of 1"
        )
    else:
        found = "each component's probabilities sum to its weight π_i, but not every value is right"
    k, i = bad.nonzero()[0].tolist()
    edge = (
        "the edge bin 0, which takes all the mass below 0.5"
        if k == 0
        else (
            f"the edge bin d − 1 = {k}, which takes all the mass above {d - 1.5}"
            if k == d - 1
            else "an interior bin"
        )
    )
    formula = (
        "log π_i + log σ(u)"
        if k == 0
        else "log π_i + log σ(−l)"
        if k == d - 1
        else "log π_i + log σ(u) + log σ(−l) + log(1 − e^(−1/s))"
    )
    mistake = _mixture_mistake(got, k, i, logits, means, log_scales.detach().double(), d)
    raise ExerciseFailed(
        f"{name}: {found}. The first wrong value is at x = {k}, {edge}, for component {i} (μ = {means[i]:.2f}, "
        f"s = {scales[i]:.2f}, π = {weights[i]:.3f}): yours is {got[k, i]:.6g}, it should be {formula} = "
        f"{expected[k, i]:.6g}, with u = (x + 0.5 − μ)/s and l = (x − 0.5 − μ)/s"
        + (f". {mistake}" if mistake else "")
    )


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
        (
            log_weights + up + down + width,
            f"The edge bin {k} should take all {beyond}; yours is the interior bins' formula, which leaves out the "
            f"tail beyond it",
        ),
        (
            log_weights + _edges_and_interior(down, up + down + width, up),
            "Yours is the other edge bin's formula: the edge bins are swapped. Bin 0 takes the mass below 0.5, "
            f"log σ(u), and bin d − 1 the mass above {d - 1.5}, log σ(−l)",
        ),
        (
            log_weights + _edges_and_interior(up + width, up + down + width, down + width),
            "Yours adds the width term log(1 − e^(−1/s)), which belongs to the interior bins only: there σ(u) − σ(l) "
            "= σ(u) σ(−l) (1 − e^(−1/s)), while an edge bin is σ(u) or σ(−l) alone",
        ),
        (
            log_weights + _edges_and_interior(up, up + down, down),
            f"Yours lacks the width term log(1 − e^(−1/s)) = {float(width[k, i]):.4g}: σ(u) − σ(l) = σ(u) σ(−l) "
            f"(1 − e^(−1/s)), so log p_i(x) = log σ(u) + log σ(−l) + log(1 − e^(−1/s)) "
            f"(torch.log(-torch.expm1(-1 / s)))",
        ),
        (
            logits + right(up, down, width),
            f"Yours adds the raw logit {float(logits[i]):.4g} where log π_i = log_softmax(logits)_i = "
            f"{float(log_weights[i]):.4g}: the weights then follow exp(logits), which sum to "
            f"{float(logits.exp().sum()):.4g}, not softmax(logits), which sums to 1",
        ),
        (
            log_weights + right(*_log_bins(means, F.softplus(log_scales), d)),
            f"Yours is the value for the scale s = softplus(log_scales)_i = {float(F.softplus(log_scales[i])):.4g}: "
            f"log_scales holds log s, so s = exp(log_scales)",
        ),
        (
            log_weights + right(*_log_bins(means, log_scales, d)),
            f"Yours is the value for the scale s = log_scales_i = {float(log_scales[i]):.4g}"
            + (", negative, hence the nan" if got[k, i].isnan() else "")
            + ": log_scales holds log s, so "
            "s = exp(log_scales)",
        ),
        (
            log_weights + right(*_log_bins(means, scales, d, half=1.0)),
            "Yours is the mass of [x − 1, x + 1], but bin x is [x − 0.5, x + 0.5], so that the bins do not overlap: "
            "u = (x + 0.5 − μ)/s, l = (x − 0.5 − μ)/s",
        ),
    ]
    for table, explanation in mistakes:  # a nan matches only a table nan where, and only where, got is
        if (
            torch.isclose(got, table, rtol=1e-4, atol=1e-4, equal_nan=True).all()
            if got[k, i].isnan()
            else torch.isclose(got[k, i], table[k, i], rtol=1e-4, atol=1e-4)
        ):
            return explanation
    if got[k, i].isnan():
        return (
            "Yours is nan, the result of an invalid operation: the log of a negative number (such as σ(l) − σ(u), "
            "the difference the wrong way round), inf − inf or 0 · inf"
        )
    return None


def _mixture_is_stable(name, call, reference, d):
    """Components far narrower than a bin, evaluated far in their tails: finite, right, with finite gradients."""
    logits = torch.zeros(3, requires_grad=True)
    means = torch.tensor([3.3, 0.2, 8.9], requires_grad=True)
    log_scales = torch.full((3,), float(np.log(1e-4)), requires_grad=True)
    categories = torch.arange(d)
    log_p = tensor_result(
        name, call(categories, logits, means, log_scales, d), (d, 3), "log π_i + log p_i(x)"
    )
    expected = reference(categories, logits, means, log_scales, d)
    where = lambda bad: tuple(bad.nonzero()[0].tolist())
    bad = ~torch.isfinite(log_p.detach())
    if bad.any():
        k, i = where(bad)
        raise ExerciseFailed(
            f"{name}: log-probabilities become {float(log_p.detach()[k, i])} at scale 1e-4: at x = {k}, component {i} "
            f"(μ = {means.detach()[i]:.1f}) is {abs(k - means.detach()[i].item()) / 1e-4:.0f} scales away, "
            f"where σ((x ± 0.5 − μ)/s) "
            f"round to 0 or 1 in float32 and their difference to 0. Subtract in log space: σ(u) − σ(l) = "
            f"σ(u) σ(−l) (1 − e^(−1/s)), so log p = log σ(u) + log σ(−l) + log(1 − e^(−1/s)) (F.logsigmoid), "
            f"and at the edges log σ(u) or log σ(−l) alone"
        )
    bad = differs(log_p, expected, rtol=1e-3, atol=1e-2)
    if bad.any():
        k, i = where(bad)
        raise ExerciseFailed(
            f"{name}: at scale 1e-4, x = {k}, component {i} (μ = {means.detach()[i]:.1f}) gives "
            f"{float(log_p.detach()[k, i]):.6g}, "
            f"finite but wrong: it should be {float(expected[k, i]):.6g}. Compute it in log space (log σ(u) + "
            f"log σ(−l) + log(1 − e^(−1/s))) rather than guarding the log of a difference (e.g. log(p + ε))"
        )
    grads = torch.autograd.grad(log_p.sum(), (means, log_scales), allow_unused=True)
    if any(g is not None and not torch.isfinite(g).all() for g in grads):
        raise ExerciseFailed(
            f"{name}: the values are right at scale 1e-4, but their gradients are not finite, so "
            f"training would turn the parameters into NaN: avoid operations whose gradient blows "
            f"up there (e.g. log of a rounded difference, or torch.where over a -inf branch)"
        )


def check_q1_b(fn):
    """Check q1_b(train_data, test_data, d, dset_id) -> (train_losses, test_losses, distribution), the course's
    contract (`check_1d_answer`)."""
    check_1d_answer("q1_b", fn)
