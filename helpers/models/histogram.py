"""Histogram: the simplest likelihood model of one categorical variable, p(x) = softmax(θ)_x."""
import torch
import torch.nn as nn

from .._checks import as_categories, check_integer
from .univariate import UnivariateDistribution


class Histogram(UnivariateDistribution):
    """A free probability for each of the d categories, parametrized by logits θ ∈ R^d.

    log p(x) = θ_x − logsumexp(θ). The softmax keeps the probabilities positive and summing to 1
    without constraints on θ, so plain gradient descent applies; its gradient of the mean NLL is
    softmax(θ) − (empirical frequencies), zero exactly at the maximum-likelihood histogram.
    θ starts at zero: the uniform distribution, with loss log d nats.
    """

    def __init__(self, d):
        super().__init__()
        self.d = check_integer(d, "d", 2, "the number of categories")
        self.logits = nn.Parameter(torch.zeros(self.d))

    def log_prob(self, x):
        """Log-likelihood in nats of each integer x in [0, d − 1]; same shape as x."""
        x = as_categories(x, self.d).to(self.logits.device)
        return self.logits.log_softmax(dim=0)[x]
