"""Discretized mixture of logistics (PixelCNN++, Salimans et al. 2017) over the categories 0 .. d − 1.

Each component i is a logistic with mean μ_i and scale s_i, whose CDF is σ((t − μ_i) / s_i). Category x
gets the mass of the bin [x − 0.5, x + 0.5]:

    p(x) = Σ_i π_i [σ((x + 0.5 − μ_i) / s_i) − σ((x − 0.5 − μ_i) / s_i)],

except that the first bin extends to −∞ and the last to +∞, so the edge bins carry the tails and the d
probabilities telescope to exactly 1, wherever the components are.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import as_categories, check_integer
from .univariate import UnivariateDistribution

# Log-scales are clamped to this range before use, only to keep exp(±log_s) finite and nonzero in
# float32 (beyond it the clamped parameter gets no gradient). The model loses nothing: far inside the
# range, at log_s ≈ −5, a component already puts all but e^(−70) of its mass in one bin, and at
# log_s = 30 it is flat over any practical d.
LOG_SCALE_MIN, LOG_SCALE_MAX = -30.0, 30.0


def weighted_component_log_probs(x, logits, means, log_scales, d):
    """log π_i + log p_i(x) for each component i, shape (*x.shape, n_components), as DiscretizedLogisticMixture's
    docstring says, for a long tensor x of categories in [0, d − 1] and the parameters (n_components,).

    Where the parameters' dtype cannot hold every category exactly (d − 1 > 2**24 in float32: 2**24 + 1
    would be read as 2**24, so neighbours would share one probability), the terms are computed in
    float64 and returned in the parameters' dtype."""
    if means.dtype != torch.float64 and d - 1 > 2 / torch.finfo(means.dtype).eps:
        return weighted_component_log_probs(x, logits.double(), means.double(), log_scales.double(), d).to(
            means.dtype
        )
    inv_scales = torch.exp(-log_scales.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))
    centered = x.to(means.dtype).unsqueeze(-1) - means  # (..., n_components)
    upper = (centered + 0.5) * inv_scales
    lower = (centered - 0.5) * inv_scales
    # log(1 − e^(−1/s)) via expm1: accurate for components much wider than a bin (1/s → 0), where
    # the log is very negative; for narrow ones it is ≈ 0, off by less than float precision.
    log_width = torch.log(-torch.expm1(-inv_scales))
    first = (x == 0).unsqueeze(-1)
    last = (x == d - 1).unsqueeze(-1)
    log_bin = (
        torch.where(last, 0.0, F.logsigmoid(upper))
        + torch.where(first, 0.0, F.logsigmoid(-lower))
        + torch.where(first | last, 0.0, log_width)
    )
    return logits.log_softmax(dim=-1) + log_bin


class DiscretizedLogisticMixture(UnivariateDistribution):
    """Mixture of n_components discretized logistics over d categories.

    Parameters: `logits` (mixture weights π = softmax(logits)), `means` (μ, in category units) and
    `log_scales` (log s). Initially the weights are equal, the means sit at the centres of
    n_components equal slices of [0, d − 1], and s = d / (4 n_components), so neighbouring components
    overlap and every category has appreciable mass.

    The bin mass is computed in log space so that it stays finite, with finite gradients, when x is
    far in a component's tail or the component is much narrower than a bin. With u = (x + 0.5 − μ)/s
    and l = (x − 0.5 − μ)/s, the exact identity

        σ(u) − σ(l) = σ(u) σ(−l) (1 − e^(−(u − l))),   with u − l = 1/s,

    gives log p = log σ(u) + log σ(−l) + log(1 − e^(−1/s)): two log-sigmoids, finite for any u and l,
    plus a term that depends on s alone. Nothing nearly equal is subtracted, unlike forms built on
    σ(l) / σ(u), which collapse to log 0 once σ(u) and σ(l) round to the same number (u and l both
    large and positive: x far above μ). The edge bins drop the factor for their infinite end:
    p(0) = σ(u) and p(d − 1) = 1 − σ(l) = σ(−l). Components combine with logsumexp over
    log π_i + log p_i(x).

    weighted_component_log_probs: a function with the signature of the module's `weighted_component_log_probs`
        to use in its place, as every model takes a learner's function (a keyword argument defaulting to the
        package's).
    """

    def __init__(self, d, n_components=4, weighted_component_log_probs=weighted_component_log_probs):
        super().__init__()
        self.weighted_component_log_probs = weighted_component_log_probs
        self.d = check_integer(d, "d", 2, "the number of categories")
        self.n_components = k = check_integer(
            n_components, "n_components", 1, "the number of mixture components"
        )
        self.logits = nn.Parameter(torch.zeros(k))
        self.means = nn.Parameter((self.d - 1) * (torch.arange(k, dtype=torch.float32) + 0.5) / k)
        self.log_scales = nn.Parameter(torch.full((k,), math.log(self.d / (4 * k))))

    def log_prob(self, x):
        """Log-likelihood in nats of each integer x in [0, d − 1]; same shape as x."""
        return torch.logsumexp(self._weighted_component_log_probs(x), dim=-1)

    def component_distributions(self):
        """The weighted components π_i p_i(x) over the d categories: a float64 numpy array (n_components, d).

        Row i sums to the weight π_i (up to float precision), and the rows add up to `distribution()`:
        they are the same log-space terms that `log_prob` combines by logsumexp.
        """
        with torch.no_grad():
            log_p = self._weighted_component_log_probs(torch.arange(self.d, device=self.means.device))
        return log_p.double().exp().T.cpu().numpy()

    def _weighted_component_log_probs(self, x):
        x = as_categories(x, self.d).to(self.means.device)
        return self.weighted_component_log_probs(x, self.logits, self.means, self.log_scales, self.d)
