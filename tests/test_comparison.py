"""helpers.comparison: paired differences against hand computations, and clear errors."""

import math

import numpy as np
import pytest
import torch

from helpers.comparison import Difference, describe, mean_and_se, paired_difference, per_example_nll
from helpers.models import MADE, Histogram


def test_the_paired_difference_matches_a_hand_computation():
    # differences 1, 2, 3, 6: mean 3, sample variance (4 + 1 + 0 + 9) / 3 = 14/3, se = sqrt(14/3 / 4)
    difference = paired_difference([2.0, 3.0, 5.0, 9.0], [1.0, 1.0, 2.0, 3.0])
    assert difference.mean == pytest.approx(3.0)
    assert difference.se == pytest.approx(math.sqrt(14 / 3 / 4))
    assert difference.n == 4 and difference.measurable


def test_pairing_removes_what_both_models_share():
    """Losses that vary a lot from example to example but differ by a constant: the paired s.e. is 0,
    while the unpaired standard errors of the two means are large."""
    shared = np.random.RandomState(0).exponential(5.0, size=1000)
    difference = paired_difference(shared + 0.01, shared)
    assert difference.mean == pytest.approx(0.01) and difference.se < 1e-12
    assert mean_and_se(shared)[1] > 0.1


def test_a_difference_within_two_standard_errors_is_not_measurable():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    difference = paired_difference(a, a[::-1])  # differences -3, -1, 1, 3: mean 0
    assert difference.mean == 0 and not difference.measurable
    assert "not measurable here" in describe("A", "B", difference)
    assert "A is lower than B by 0.5000 ± 0.1000 nats per dimension (5.0 standard errors)" == describe(
        "A", "B", Difference(-0.5, 0.1, 10)
    )


@pytest.mark.parametrize(
    "a,b,message",
    [
        ([1.0, 2.0], [1.0, 2.0, 3.0], "same examples: got 2 and 3 losses"),
        ([1.0], [2.0], "at least 2 finite per-example losses"),
        ([1.0, float("nan")], [1.0, 2.0], "with NaN or infinite values"),
        ([[1.0, 2.0]], [[1.0, 2.0]], "1-D array"),
    ],
)
def test_bad_losses_are_refused_with_the_reason(a, b, message):
    with pytest.raises(ValueError, match=message):
        paired_difference(a, b)


def test_per_example_nll_is_per_dimension_and_matches_log_prob():
    histogram = Histogram(5)
    x = np.array([0, 1, 4, 4])
    assert np.allclose(per_example_nll(histogram, x), np.log(5))  # uniform start: log d per example
    made = MADE((2, 3), 2, [8])
    images = torch.randint(0, 2, (7, 2, 3))
    expected = -made.log_prob(images).detach().numpy() / 6
    assert np.allclose(per_example_nll(made, images, batch_size=3), expected)


@pytest.mark.parametrize("se", [0.0, 1e-17])
def test_a_difference_without_spread_is_described_without_a_ratio_to_it(se):
    """No spread, or only float rounding's (a constant shift of every loss): no division by it, no 10^16 ratio."""
    text = describe("A", "B", Difference(0.8, se, 1000))
    assert (
        text
        == f"A is higher than B by 0.8000 ± {se:.4f} nats per dimension (the same difference on every example)"
    )
    shared = np.random.RandomState(0).exponential(5.0, size=1000)
    assert "the same difference on every example" in describe(
        "A", "B", paired_difference(shared + 0.01, shared)
    )
    assert "(more than 1000 standard errors)" in describe("A", "B", Difference(0.8, 1e-4, 1000))


@pytest.mark.parametrize(
    "x,batch_size,message",
    [
        (np.zeros((0, 2, 3), dtype=np.int64), 10, r"x holds no examples \(shape \(0, 2, 3\)\)"),
        (
            np.zeros((4, 2, 3), dtype=np.int64),
            0,
            r"batch_size \(examples per evaluation batch\) must be an integer >= 1, got 0",
        ),
    ],
)
def test_per_example_nll_names_no_examples_and_a_zero_batch_size(x, batch_size, message):
    with pytest.raises(ValueError, match=message):
        per_example_nll(MADE((2, 3), 2, [8]), x, batch_size=batch_size)


def test_per_example_nll_of_one_example_divides_by_the_models_dimensions():
    """MADE accepts one example without a batch axis: a (4, 4) image has 16 dimensions, not 4, and a pair 2, not 1."""
    torch.manual_seed(0)
    made = MADE((4, 4), 2, [8])
    image = torch.randint(0, 2, (4, 4))
    expected = -made.log_prob(image[None]).detach().numpy() / 16
    np.testing.assert_allclose(per_example_nll(made, image), expected, rtol=1e-6)
    pairs = MADE((2,), 5, [8])
    pair = torch.tensor([1, 3])
    np.testing.assert_allclose(
        per_example_nll(pairs, pair), -pairs.log_prob(pair[None]).detach().numpy() / 2, rtol=1e-6
    )


def test_per_example_nll_refuses_examples_of_another_shape_than_the_models():
    with pytest.raises(
        ValueError,
        match=r"x must be examples of the model's input shape \(2, 3\): an array \(N, 2, 3\) "
        r"or one example \(2, 3\), got shape \(4, 3, 2\)",
    ):
        per_example_nll(MADE((2, 3), 2, [8]), np.zeros((4, 3, 2), dtype=np.int64))
