"""The check of notebook 1's exercise: the histogram's log-probability from its logits."""

import numpy as np
import torch

from .harness import ExerciseFailed, isolated, needs_gradient, passed, prepare, same, tensor_result


def check_histogram_log_prob(fn):
    """Check histogram_log_prob(logits, x) -> log softmax(logits)_x, a tensor of x's shape."""
    name = "histogram_log_prob"
    exercise, call = prepare(name, fn)
    with isolated():
        d = 6
        logits = (2 * torch.randn(d)).requires_grad_()
        x = torch.tensor([[0, 3, 3], [5, 1, 2]])
        out = tensor_result(name, call(logits, x), x.shape, "one log-probability per example, of x's shape")
        for k, in_batch in zip(x.flatten().tolist(), out.flatten().tolist()):
            alone = float(
                tensor_result(name, call(logits, torch.tensor([k])), (1,), "one log-probability per example")[
                    0
                ].detach()
            )
            if abs(alone - in_batch) > 1e-4:
                raise ExerciseFailed(
                    f"{name}: log p(x = {k}) depends on the other examples in the batch: {alone:.4f} alone, "
                    f"{in_batch:.4f} "
                    f"among x = {x.tolist()}. The softmax is over the wrong axis: normalize over the d categories "
                    f"(the logits' axis), then pick x's entries, not over the examples"
                )
        categories = torch.arange(d)
        log_p = tensor_result(name, call(logits, categories), (d,), "one log-probability per example")
        total = float(log_p.detach().double().exp().sum())
        if abs(total - 1) > 1e-4:
            raise ExerciseFailed(
                f"{name}: the probabilities of the d = {d} categories, by enumeration, sum to {total:.4f}, "
                f"off by {total - 1:+.4f}: p(x) = softmax(θ)_x sums to 1 for any logits θ"
                f"{_what_the_values_are(log_p.detach().double())}"
            )
        expected = exercise.reference(logits, categories)
        same(name, log_p, expected, lambda i: f"x = {i}", "θ_x − logsumexp(θ)")
        needs_gradient(name, log_p, "logits")
        large = torch.tensor([200.0, 0.0, -200.0, 90.0])
        log_p = tensor_result(name, call(large, torch.arange(4)), (4,), "one log-probability per example")
        same(
            name,
            log_p,
            exercise.reference(large, torch.arange(4)),
            lambda i: f"x = {i}",
            "θ_x − logsumexp(θ)",
            f" at logits {large.tolist()}: exp(θ) overflows float32 above θ ≈ 88 and a probability below 1e-38 "
            f"rounds to 0, so compute θ_x − logsumexp(θ) in log space (torch.log_softmax), never exp(θ) or the "
            f"log of a softmax",
        )
    passed(
        exercise,
        fn,
        f"the probabilities of {d} categories sum to 1 and equal softmax(θ), each independent of "
        f"the batch, finite at logits of ±200, with gradients to θ",
    )


def _what_the_values_are(values):
    """What a learner's values of log p(x) over all d categories, which do not normalize, look like instead."""
    if ((values >= 0) & (values <= 1)).all() and abs(float(values.sum()) - 1) < 1e-4:
        return (
            ". Your values themselves sum to 1: they are the probabilities softmax(θ)_x; return their log, "
            "θ_x − logsumexp(θ) (torch.log_softmax)"
        )
    if (values >= 0).all() and abs(float((-values).exp().sum()) - 1) < 1e-4:
        return (
            ". Your values are positive and e^(−value) sums to 1: they are −log p(x), the negative "
            "log-likelihood; return log p(x), which is at most 0 (no minus sign)"
        )
    for base, log in ((2, "torch.log2"), (10, "torch.log10")):
        if abs(float((values * np.log(base)).exp().sum()) - 1) < 1e-4:
            return (
                f". {base}^value sums to 1: your values are logarithms to base {base} ({log}); return the natural "
                f"log, θ_x − logsumexp(θ) (torch.log_softmax), in nats as the loss expects"
            )
    if (values > 0).any():
        return (
            f". Yours reach {float(values.max()):.4g} at x = {int(values.argmax())}, but a log-probability is at "
            f"most 0 (a probability is at most 1): subtract logsumexp(θ) from the logits"
        )
    return ""
