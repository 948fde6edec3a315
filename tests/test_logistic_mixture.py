import math

import numpy as np
import pytest
import torch

from helpers.models.logistic_mixture import DiscretizedLogisticMixture


def sigmoid(t):
    return np.exp(-np.logaddexp(0.0, -t))


def reference_probs(d, logits, means, log_scales):
    """p(0 .. d − 1) in float64 numpy, written directly from the definition (edge bins take the tails).

    A difference of sigmoids is taken on the side where both are small (σ(u) − σ(l) = σ(−l) − σ(−u)),
    so it stays accurate far in the tails, where a naive float64 difference would round to 0.
    """
    logits, means, log_scales = (np.asarray(a, dtype=np.float64) for a in (logits, means, log_scales))
    x = np.arange(d, dtype=np.float64)[:, None]
    s = np.exp(log_scales)
    u, l = (x + 0.5 - means) / s, (x - 0.5 - means) / s
    mass = np.where(u + l <= 0, sigmoid(u) - sigmoid(l), sigmoid(-l) - sigmoid(-u))
    mass[0] = sigmoid(u[0])
    mass[-1] = sigmoid(-l[-1])
    return mass @ np.exp(logits - np.logaddexp.reduce(logits))


def make_model(d, logits, means, log_scales, dtype=torch.float64):
    model = DiscretizedLogisticMixture(d, len(means)).to(dtype)
    with torch.no_grad():
        for param, value in [(model.logits, logits), (model.means, means), (model.log_scales, log_scales)]:
            param.copy_(torch.as_tensor(value, dtype=dtype))
    return model


def all_log_probs(model):
    return model.log_prob(torch.arange(model.d))


def test_initialization_spreads_components_and_covers_every_category():
    d, k = 256, 4
    model = DiscretizedLogisticMixture(d, k)
    np.testing.assert_allclose(model.means.detach().numpy(), [31.875, 95.625, 159.375, 223.125])
    np.testing.assert_allclose(model.log_scales.detach().exp().numpy(), d / (4 * k), rtol=1e-6)
    assert torch.all(model.logits == 0)
    p = model.distribution()
    assert p.min() > 0.3 / d  # no category starts out (nearly) impossible


@pytest.mark.parametrize("d", [2, 3, 10])
@pytest.mark.parametrize(
    "mean, log_scale", [(0.0, 0.0), (4.3, math.log(0.7)), (-2.0, math.log(3.0)), (1.5, 1.0)]
)
def test_single_component_matches_direct_computation(d, mean, log_scale):
    s = math.exp(log_scale)
    x = np.arange(d)
    expected = sigmoid((x + 0.5 - mean) / s) - sigmoid((x - 0.5 - mean) / s)
    expected[0] = sigmoid((0.5 - mean) / s)  # everything below 0.5 goes to category 0
    expected[-1] = 1.0 - sigmoid((d - 1.5 - mean) / s)  # everything above d − 1.5 goes to d − 1
    model = make_model(d, [0.0], [mean], [log_scale])
    np.testing.assert_allclose(model.distribution(), expected, rtol=1e-10, atol=1e-15)


def test_mixture_matches_reference_and_loss_is_mean_nll():
    d = 12
    params = dict(logits=[0.3, -1.0, 0.5], means=[1.2, 6.0, 10.5], log_scales=[-0.5, 0.4, 1.1])
    model = make_model(d, **params)
    p = reference_probs(d, **params)
    np.testing.assert_allclose(model.distribution(), p, rtol=1e-10)
    x = torch.tensor([[0, 11, 5], [3, 3, 7]])
    log_p = model.log_prob(x)
    assert log_p.shape == x.shape
    np.testing.assert_allclose(log_p.detach().numpy(), np.log(p[x.numpy()]), rtol=1e-10)
    assert model.loss(x).dim() == 0
    assert model.loss(x).item() == pytest.approx(-np.log(p[x.numpy()]).mean(), rel=1e-10)


def test_loss_of_a_symmetric_two_category_model_is_log_2():
    # d = 2 with the mean on the boundary 0.5 between the two bins: p(0) = σ(0) = 1/2, whatever the scale.
    model = DiscretizedLogisticMixture(2, 1)
    with torch.no_grad():
        model.means.fill_(0.5)
        model.log_scales.fill_(-3.0)
    assert model.loss(torch.tensor([0, 1, 1])).item() == pytest.approx(math.log(2), rel=1e-6)


EXTREME_CASES = {
    # name: (means, log_scales) for three components; logits are drawn at random
    "random": (lambda rng, d: rng.uniform(-d, 2 * d, 3), lambda rng, d: rng.normal(0.0, 2.0, 3)),
    "means_far_outside": (lambda rng, d: np.array([-1e4, 1e6, -3e5]), lambda rng, d: rng.normal(0.0, 2.0, 3)),
    "tiny_scales": (lambda rng, d: rng.uniform(0, d - 1, 3), lambda rng, d: np.array([-20.0, -100.0, -8.0])),
    "huge_scales": (lambda rng, d: rng.uniform(-d, 2 * d, 3), lambda rng, d: np.array([20.0, 120.0, 8.0])),
    "tiny_scales_far_outside": (
        lambda rng, d: np.array([-1e3, 1e5, d + 0.3]),
        lambda rng, d: np.full(3, -20.0),
    ),
    "mixed": (lambda rng, d: np.array([-1e4, 0.5 * d, 1e6]), lambda rng, d: np.array([30.0, -20.0, 0.0])),
    "beyond_float32_exp_range": (
        lambda rng, d: rng.uniform(0, d - 1, 3),
        lambda rng, d: np.array([-200.0, 200.0, 0.0]),
    ),
}


@pytest.mark.parametrize("d", [2, 5, 256])
@pytest.mark.parametrize("case", EXTREME_CASES)
def test_normalized_and_finite_for_extreme_parameters(d, case):
    rng = np.random.default_rng(d)
    means, log_scales = (f(rng, d) for f in EXTREME_CASES[case])
    logits = rng.normal(0.0, 3.0, 3)
    model64 = make_model(d, logits, means, log_scales)
    log_p = all_log_probs(model64)
    assert torch.isfinite(log_p).all()
    assert log_p.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
    model32 = make_model(d, logits, means, log_scales, dtype=torch.float32)
    assert torch.isfinite(all_log_probs(model32)).all()
    p32 = model32.distribution()
    assert p32.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(p32, log_p.detach().exp().numpy(), atol=1e-5)


@pytest.mark.parametrize("mean, x", [(2.0, 150), (190.0, 10), (2.0, 199), (190.0, 0)])
def test_float32_log_prob_is_accurate_far_in_the_tails(mean, x):
    # About 10^-65 of mass: a naive float32 difference of sigmoids gives 0 (log 0 = −inf) here.
    d, log_scale = 200, math.log(0.5)
    expected = math.log(reference_probs(d, [0.0], [mean], [log_scale])[x])
    assert expected < -150
    log_p = make_model(d, [0.0], [mean], [log_scale], dtype=torch.float32).log_prob(torch.tensor([x]))
    assert log_p.item() == pytest.approx(expected, rel=1e-5)


def test_float32_log_prob_is_accurate_for_very_wide_components():
    # s = e^25: a middle bin holds ≈ σ'(m) / s of mass (m = bin centre in scale units), but u and l
    # differ by 1.4e-11, far below float32 resolution, so σ(u) − σ(l) would round to 0.
    d, mean, log_scale = 50, 1e11, 25.0
    x = 20
    m = (x - mean) / math.exp(log_scale)
    expected = math.log(sigmoid(m) * sigmoid(-m)) - log_scale
    log_p = make_model(d, [0.0], [mean], [log_scale], dtype=torch.float32).log_prob(torch.tensor([x]))
    assert log_p.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("log_scale", [-20.0, -100.0, 120.0])
def test_gradients_finite_on_data_far_from_a_narrow_component(log_scale):
    d = 100
    model = make_model(d, [0.0, 2.0], [0.0, -1e5], [log_scale, log_scale], dtype=torch.float32)
    x = torch.tensor([99, 60, 99, 30])  # every example far above both components
    loss = model.loss(x)
    assert torch.isfinite(loss)
    loss.backward()
    for param in model.parameters():
        assert torch.isfinite(param.grad).all()
    # The nearer component takes the blame and is pulled up toward the data.
    assert model.means.grad[0] < 0


def test_adam_fits_data_drawn_from_a_discretized_logistic_mixture():
    d = 20
    true_params = dict(logits=[0.4, -0.4], means=[4.0, 13.0], log_scales=[0.0, math.log(2.0)])
    true_p = reference_probs(d, **true_params)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.choice(d, size=400, p=true_p))
    model = DiscretizedLogisticMixture(d, n_components=2)
    assert 0.5 * np.abs(model.distribution() - true_p).sum() > 0.3  # far from the truth at the start
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
    learned = model.distribution()
    empirical = np.bincount(x.numpy(), minlength=d) / len(x)
    assert 0.5 * np.abs(learned - true_p).sum() < 0.08
    assert 0.5 * np.abs(learned - empirical).sum() < 0.1
    # Maximum likelihood: the fit explains the sample at least as well as the parameters that generated it.
    assert model.loss(x).item() <= make_model(d, **true_params).loss(x).item() + 1e-3


@pytest.mark.parametrize(
    "x, match",
    [
        (torch.tensor([0, 10]), r"outside the categories \[0, 9\]"),
        (np.array([-1, 3]), r"outside the categories \[0, 9\]"),
        (torch.tensor([1.0, 2.0]), "must hold integer categories"),
    ],
)
def test_bad_data_raises(x, match):
    with pytest.raises(ValueError, match=match):
        DiscretizedLogisticMixture(10).log_prob(x)


def test_loss_of_an_empty_batch_is_an_error_not_nan():
    with pytest.raises(ValueError, match="loss needs at least one example, got an empty batch"):
        DiscretizedLogisticMixture(10).loss(np.zeros(0, dtype=np.int64))


@pytest.mark.parametrize("d", [1, 0, 3.0, True])
def test_bad_number_of_categories_raises(d):
    with pytest.raises(ValueError, match=r"d \(the number of categories\) must be an integer >= 2, got"):
        DiscretizedLogisticMixture(d)


@pytest.mark.parametrize("n_components", [0, -2, 1.5])
def test_bad_number_of_components_raises(n_components):
    with pytest.raises(
        ValueError, match=r"n_components \(the number of mixture components\) must be an integer >= 1"
    ):
        DiscretizedLogisticMixture(10, n_components)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
@pytest.mark.parametrize("case", ["random", "tiny_scales_far_outside", "mixed"])
def test_component_distributions_add_up_to_the_distribution(dtype, tol, case):
    d = 30
    rng = np.random.default_rng(1)
    means, log_scales = (f(rng, d) for f in EXTREME_CASES[case])
    logits = rng.normal(0.0, 1.0, 3)
    model = make_model(d, logits, means, log_scales, dtype=dtype)
    components = model.component_distributions()
    assert components.shape == (3, d) and components.dtype == np.float64
    assert (components >= 0).all()
    np.testing.assert_allclose(components.sum(0), model.distribution(), rtol=tol, atol=1e-300)
    weights = np.exp(logits - np.logaddexp.reduce(logits))
    np.testing.assert_allclose(components.sum(1), weights, rtol=10 * tol)


def test_normalized_beyond_the_categories_float32_holds_exactly():
    """d > 2**24: 2**24 + 1 is no float32 number. A narrow component at 2**24 must give 2**24 + 1 its own, small,
    probability (float32 arithmetic gave it p(2**24) = 0.848 as well), and the d probabilities must sum to 1,
    enumerated over every category."""
    d, top = 2**24 + 3, 2**24
    model = make_model(d, [0.0], [float(top)], [math.log(0.25)], dtype=torch.float32)
    with torch.no_grad():
        total = sum(
            model.log_prob(torch.arange(start, min(start + 2**22, d))).double().exp().sum().item()
            for start in range(0, d, 2**22)
        )
        near = model.log_prob(torch.tensor([top - 1, top, top + 1, top + 2])).double().exp().numpy()
    assert total == pytest.approx(1.0, abs=1e-6)
    u = lambda x: (x - top) / 0.25
    expected = [
        sigmoid(u(top - 0.5)) - sigmoid(u(top - 1.5)),
        sigmoid(u(top + 0.5)) - sigmoid(u(top - 0.5)),
        sigmoid(u(top + 1.5)) - sigmoid(u(top + 0.5)),
        1 - sigmoid(u(top + 1.5)),
    ]
    np.testing.assert_allclose(near, expected, rtol=1e-5)
    assert model.log_prob(torch.tensor([top])).dtype == torch.float32
