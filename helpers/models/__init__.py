"""Likelihood models: each has `log_prob(x)` (nats per example) and `loss(x)` (mean NLL, nats per dimension)."""
