"""Likelihood models: each has `log_prob(x)` (nats per example) and `loss(x)` (mean NLL, nats per dimension)."""
from .histogram import Histogram
from .logistic_mixture import DiscretizedLogisticMixture
from .made import MADE
