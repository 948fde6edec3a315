"""Likelihood models: each has `log_prob(x)` (nats per example) and `loss(x)` (mean NLL, nats per dimension).

MADE is split by job: `masks` (the mask mathematics, pure functions), `made` (the model), `sampling`
(its samplers, as functions of a model)."""

from .histogram import Histogram
from .logistic_mixture import DiscretizedLogisticMixture
from .made import MADE

__all__ = ["Histogram", "DiscretizedLogisticMixture", "MADE"]
