"""Shared code of the MADE / autoregressive-likelihood notebooks: data, training, plotting, models."""
