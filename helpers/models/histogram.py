"""Histogram: the simplest likelihood model of one categorical variable, p(x) = softmax(θ)_x."""

import torch
import torch.nn as nn

from .._checks import as_categories, check_integer
from .univariate import UnivariateDistribution


def histogram_log_prob(logits, x):
    """log softmax(θ)_x for a long tensor x of categories (any shape), from the logits θ (d,)."""
    return logits.log_softmax(dim=0)[x]


class Histogram(UnivariateDistribution):
    """A free probability for each of the d categories, parametrized by logits θ ∈ R^d.

    log p(x) = θ_x − logsumexp(θ). The softmax keeps the probabilities positive and summing to 1
    without constraints on θ, so plain gradient descent applies; its gradient of the mean NLL is
    softmax(θ) − (empirical frequencies), zero exactly at the maximum-likelihood histogram.
    θ starts at zero: the uniform distribution, with loss log d nats.

    histogram_log_prob: a function with the signature of the module's `histogram_log_prob` to use in its
        place, as every model takes a learner's function (a keyword argument defaulting to the package's).
    """

    def __init__(self, d, histogram_log_prob=histogram_log_prob):
        super().__init__()
        self.histogram_log_prob = histogram_log_prob
        self.d = check_integer(d, "d", 2, "the number of categories")
        self.logits = nn.Parameter(torch.zeros(self.d))

    def log_prob(self, x):
        """Log-likelihood in nats of each integer x in [0, d − 1]; same shape as x."""
        x = as_categories(x, self.d).to(self.logits.device)
        return self.histogram_log_prob(self.logits, x)
