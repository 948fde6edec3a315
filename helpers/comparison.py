"""Comparing two models on the same examples: the difference of their mean losses with its paired
standard error, so that a reader can tell a real difference from the noise of a finite test set."""

import math
from typing import NamedTuple

import numpy as np
import torch

from ._checks import check_integer


class Difference(NamedTuple):
    """mean(losses_a - losses_b) over n shared examples and its standard error."""

    mean: float
    se: float
    n: int

    @property
    def measurable(self):
        """More than two standard errors from zero; anything closer is not measurable on these examples."""
        return abs(self.mean) > 2 * self.se

    def __str__(self):
        return f"{self.mean:+.4f} ± {self.se:.4f}"


def _as_per_example_losses(losses, name):
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim != 1 or len(losses) < 2 or not np.isfinite(losses).all():
        raise ValueError(
            f"{name} must be a 1-D array of at least 2 finite per-example losses, got shape "
            f"{losses.shape}" + ("" if np.isfinite(losses).all() else " with NaN or infinite values")
        )
    return losses


def mean_and_se(losses):
    """The mean of per-example losses and its standard error, std / sqrt(n) (ddof = 1)."""
    losses = _as_per_example_losses(losses, "losses")
    return float(losses.mean()), float(losses.std(ddof=1) / math.sqrt(len(losses)))


def paired_difference(losses_a, losses_b):
    """Difference of mean losses, a - b, over the same examples, with its paired standard error.

    Pairing matters: both models find the same examples hard, so the per-example differences vary far
    less than the losses themselves, and the standard error of their mean is what decides whether a
    difference is real. `losses_a[i]` and `losses_b[i]` must be the losses of the same example i."""
    a, b = _as_per_example_losses(losses_a, "losses_a"), _as_per_example_losses(losses_b, "losses_b")
    if a.shape != b.shape:
        raise ValueError(f"paired losses must be of the same examples: got {len(a)} and {len(b)} losses")
    mean, se = mean_and_se(a - b)
    return Difference(mean, se, len(a))


def per_example_nll(model, x, batch_size=10000):
    """-log p(x) of each example under `model`, in nats per dimension (a numpy array, one per example).

    x: (N, *shape) with the model's event shape, or one example (*shape) for a model that has an `input_shape`
    (MADE); the dimension count is the product of `shape`, the model's own where it has one (1 for
    one-dimensional data). Evaluated without gradients, in eval mode, on the model's device."""
    batch_size = check_integer(batch_size, "batch_size", 1, "examples per evaluation batch")
    x = torch.as_tensor(np.asarray(x))
    shape = getattr(model, "input_shape", None)
    if shape is not None:
        shape = tuple(shape)
        if tuple(x.shape) == shape:
            x = x[None]  # one example, as MADE accepts it
        elif tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"x must be examples of the model's input shape {shape}: an array "
                f"(N, {', '.join(map(str, shape))}) or one example {shape}, got shape {tuple(x.shape)}"
            )
    if x.dim() == 0 or len(x) == 0:
        raise ValueError(
            f"x holds no examples (shape {tuple(x.shape)}); pass an array of shape (N, *shape) with N >= 1"
        )
    dimensions = math.prod(shape if shape is not None else x.shape[1:])
    model.eval()
    with torch.no_grad():
        nll = torch.cat([-model.log_prob(x[i : i + batch_size]).cpu() for i in range(0, len(x), batch_size)])
    return nll.double().numpy() / dimensions


def describe(name_a, name_b, difference, unit="nats per dimension"):
    """One sentence on a - b that says whether the difference is measurable on these examples."""
    if not difference.measurable:
        return (
            f"{name_a} against {name_b}: {difference} {unit} (paired standard error): within two standard "
            f"errors, not measurable here"
        )
    lower = "lower" if difference.mean < 0 else "higher"
    size = abs(difference.mean)
    if difference.se <= 1e-12 * size:  # no spread beyond float rounding: a ratio to it would mean nothing
        strength = "the same difference on every example"
    else:
        ratio = size / difference.se
        strength = f"{ratio:.1f} standard errors" if ratio < 1000 else "more than 1000 standard errors"
    return f"{name_a} is {lower} than {name_b} by {size:.4f} ± {difference.se:.4f} {unit} ({strength})"
