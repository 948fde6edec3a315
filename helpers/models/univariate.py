"""What the one-variable models share: the loss and the table of their d probabilities."""

import torch
import torch.nn as nn

from .._checks import as_categories, check_examples


class UnivariateDistribution(nn.Module):
    """A distribution over the categories 0 .. d − 1; subclasses set `self.d` and define `log_prob(x)`."""

    def loss(self, x):
        """Mean negative log-likelihood over the batch, in nats per dimension (here one dimension)."""
        log_p = self.log_prob(x)
        check_examples(log_p)  # same shape as x
        return -log_p.mean()

    def check_input(self, x):
        """x as a long tensor of categories in [0, d − 1], or a ValueError saying what is wrong."""
        return as_categories(x, self.d)

    def distribution(self):
        """The d probabilities as a float64 numpy array (not renormalized: they sum to 1 up to float precision)."""
        device = next(self.parameters()).device
        with torch.no_grad():
            log_p = self.log_prob(torch.arange(self.d, device=device))
        return log_p.double().exp().cpu().numpy()
