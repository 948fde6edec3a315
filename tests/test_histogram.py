import math

import numpy as np
import pytest
import torch

from helpers.models.histogram import Histogram


def test_uniform_initialization_costs_log_d_nats():
    d = 7
    model = Histogram(d)
    x = torch.tensor([0, 3, 6, 6, 2])
    assert torch.allclose(model.log_prob(x), torch.full((5,), -math.log(d)))
    assert model.loss(x).dim() == 0
    assert model.loss(x).item() == pytest.approx(math.log(d), rel=1e-6)


def test_log_prob_and_loss_match_a_hand_computation():
    theta = np.array([0.5, -1.0, 2.0, 0.0])
    model = Histogram(4).double()
    with torch.no_grad():
        model.logits.copy_(torch.from_numpy(theta))
    x = np.array([[2, 0], [1, 2]])  # 2-D batch, given as numpy
    expected = theta[x] - np.log(np.exp(theta).sum())
    log_p = model.log_prob(x)
    assert log_p.shape == (2, 2)
    np.testing.assert_allclose(log_p.detach().numpy(), expected, rtol=1e-12)
    assert model.loss(torch.from_numpy(x)).item() == pytest.approx(-expected.mean(), rel=1e-12)


def test_distribution_is_the_softmax_as_float64_numpy():
    torch.manual_seed(0)
    model = Histogram(5)
    with torch.no_grad():
        model.logits.normal_(0.0, 3.0)
    p = model.distribution()
    assert isinstance(p, np.ndarray) and p.dtype == np.float64 and p.shape == (5,)
    np.testing.assert_allclose(p, torch.softmax(model.logits.detach().double(), 0).numpy(), rtol=1e-6)
    assert p.sum() == pytest.approx(1.0, abs=1e-6)


def test_gradient_is_softmax_minus_empirical_frequencies():
    d = 6
    torch.manual_seed(1)
    model = Histogram(d).double()
    with torch.no_grad():
        model.logits.normal_()
    x = torch.tensor([0, 0, 1, 3, 3, 3, 5, 0, 3, 1])
    model.loss(x).backward()
    freq = torch.bincount(x, minlength=d).double() / len(x)
    expected = torch.softmax(model.logits.detach(), 0) - freq
    torch.testing.assert_close(model.logits.grad, expected, rtol=1e-10, atol=1e-12)


def test_adam_recovers_empirical_frequencies():
    d = 8
    rng = np.random.default_rng(0)
    true_p = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.08, 0.05, 0.02])
    x = torch.from_numpy(rng.choice(d, size=300, p=true_p))
    freq = torch.bincount(x, minlength=d).double().numpy() / len(x)
    model = Histogram(d)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
    np.testing.assert_allclose(model.distribution(), freq, atol=2e-3)
    # At the optimum the loss is the empirical entropy.
    entropy = -(freq[freq > 0] * np.log(freq[freq > 0])).sum()
    assert model.loss(x).item() == pytest.approx(entropy, abs=1e-4)


@pytest.mark.parametrize("x, match", [
    (torch.tensor([0, 4, 5]), r"outside the categories \[0, 4\]"),
    (torch.tensor([-1, 2]), r"outside the categories \[0, 4\]"),
    (torch.tensor([0.0, 1.0]), "must hold integer categories"),
])
def test_bad_data_raises(x, match):
    with pytest.raises(ValueError, match=match):
        Histogram(5).log_prob(x)


@pytest.mark.parametrize("d", [1, 0, -3, 2.5, True, "10"])
def test_bad_number_of_categories_raises(d):
    with pytest.raises(ValueError, match=r"d \(the number of categories\) must be an integer >= 2, got"):
        Histogram(d)
