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


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.tensor([0, 4, 5]), r"outside the categories \[0, 4\]"),
        (torch.tensor([-1, 2]), r"outside the categories \[0, 4\]"),
        (torch.tensor([0.0, 1.0]), "must hold integer categories"),
        (np.array([1, 2], dtype=object), "got a numpy array of dtype object; convert it with np.asarray"),
        (np.array(["1", "2"]), "got a numpy array of dtype <U1"),
        (np.array([0, 70000], dtype=np.uint32), r"values in \[0, 70000\], outside the categories \[0, 4\]"),
        (np.array([2**64 - 1], dtype=np.uint64), r"outside the categories \[0, 4\]"),  # not wrapped to -1
        (torch.tensor([0, 9], dtype=torch.uint16), r"values in \[0, 9\], outside the categories \[0, 4\]"),
        (np.float64(1.0), "must hold integer categories"),
    ],
)
def test_bad_data_raises(x, match):
    with pytest.raises(ValueError, match=match):
        Histogram(5).log_prob(x)


@pytest.mark.parametrize(
    "x",
    [
        np.array([3, 0, 4], dtype=np.uint16),
        np.array([3, 0, 4], dtype=np.uint32),
        np.array([3, 0, 4], dtype=np.uint64),
        torch.tensor([3, 0, 4], dtype=torch.uint16),
        torch.tensor([3, 0, 4], dtype=torch.uint32),
        np.flip(np.array([4, 0, 3])),
        np.array([[3, 9], [0, 9], [4, 9]])[:, 0],
    ],
)
def test_every_integer_width_and_layout_is_accepted(x):
    # 16-bit PNG images come as uint16; np.flip gives negative strides, which torch cannot view
    model = Histogram(5)
    with torch.no_grad():
        model.logits.copy_(torch.arange(5.0))
    expected = model.log_prob(torch.tensor([3, 0, 4]))
    assert torch.equal(model.log_prob(x), expected)


def test_numpy_integer_scalars_are_categories():
    model = Histogram(5)
    assert torch.equal(model.log_prob(np.int64(3)), model.log_prob(torch.tensor(3)))
    assert torch.equal(model.log_prob(np.uint16(3)), model.log_prob(torch.tensor(3)))


def test_loss_of_an_empty_batch_is_an_error_not_nan():
    with pytest.raises(
        ValueError, match="loss needs at least one example, got an empty batch of shape \\(0,\\)"
    ):
        Histogram(5).loss(torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("d", [1, 0, -3, 2.5, True, "10"])
def test_bad_number_of_categories_raises(d):
    with pytest.raises(ValueError, match=r"d \(the number of categories\) must be an integer >= 2, got"):
        Histogram(d)
