"""Tests of MADE: the autoregressive property, normalization, the ensemble, the samplers, completion."""
import copy
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.models.made import MADE


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def perturb(model, scale=1.0):
    """Replace the default init by N(0, scale^2) weights and biases: distributions far from uniform."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, scale)
    return model


def all_inputs(shape, d):
    """Every x in {0..d-1}^D, in lexicographic order of the flattened dimensions."""
    return torch.tensor(list(itertools.product(range(d), repeat=math.prod(shape)))).view(-1, *shape)


def codes(x, d):
    """Index of each x (n, *shape) in `all_inputs` order."""
    x = x.reshape(len(x), -1)
    return (x * d ** torch.arange(x.shape[1] - 1, -1, -1)).sum(1)


def total_variation(samples, probs, d):
    freq = torch.bincount(codes(samples.cpu(), d), minlength=len(probs)).double() / len(samples)
    return 0.5 * (freq - probs).abs().sum().item()


def mask_log_prob(model, x, mask):
    """log p_mask(x) from the raw logits, independently of `log_prob`."""
    logits, x = model(x, mask=mask), x.reshape(len(x), -1)
    if model.d == 2:
        return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(1)
    return logits.log_softmax(-1).gather(-1, x[..., None]).squeeze(-1).sum(1)


# --- autoregressive property ------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (2, 3), (3, 2, 2)])
@pytest.mark.parametrize("d", [2, 3, 7])
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("order", ["natural", "random", "explicit"])
@pytest.mark.parametrize("direct", [False, True])
def test_autoregressive_by_gradients(shape, d, depth, order, direct):
    D, k = math.prod(shape), 1 if d == 2 else d
    explicit = np.random.RandomState(D).permutation(D)
    ordering = {"natural": None, "random": "random", "explicit": explicit}[order]
    model = MADE(shape, d, [4 * D] * depth, ordering=ordering, num_masks=3, seed=depth, direct=direct)
    for j in range(3):
        o = model.orderings[j]
        if order != "random":
            assert o.tolist() == (list(range(D)) if ordering is None else explicit.tolist())
        # a random relaxed (float) input, so the network can be differentiated w.r.t. every input unit
        h = torch.rand(D * k)
        jac = torch.autograd.functional.jacobian(lambda h: model.network(h[None], j).reshape(-1), h, vectorize=True)
        dep = jac.reshape(D, k, D, k).abs().sum((1, 3)) > 0      # dep[i, i']: block of i depends on input i'
        rank = o.argsort()
        assert not (dep & ~(rank[:, None] > rank[None, :])).any(), f"mask {j} sees the present or the future"
        assert not dep[o[0]].any()
        assert dep[o[-1]].any(), "the last dimension should depend on earlier ones"
        if depth == 0 or direct:                                  # a masked linear path is fully connected
            assert torch.equal(dep, rank[:, None] > rank[None, :])


def test_direct_connections_are_a_strict_masked_linear_path():
    model = MADE((5,), 3, [4], direct=True)
    with torch.no_grad():
        model.layers[-1].weight.zero_()                           # silence the hidden path
    h = torch.rand(5 * 3)
    jac = torch.autograd.functional.jacobian(lambda h: model.network(h[None]).reshape(-1), h)
    dep = jac.reshape(5, 3, 5, 3).abs().sum((1, 3)) > 0
    assert torch.equal(dep, torch.ones(5, 5, dtype=torch.bool).tril(-1))   # every earlier dimension, nothing else
    assert "direct.masks" in model.state_dict() and MADE((5,), 3, [4]).direct is None


def test_explicit_ordering_as_list_array_or_tensor():
    o = [2, 0, 3, 1]
    for ordering in (o, np.array(o), torch.tensor(o)):
        assert MADE((2, 2), 3, [8], ordering=ordering).orderings[0].tolist() == o


def test_random_orderings_and_numbers_differ_between_masks():
    model = MADE((10,), 3, [32], ordering="random", num_masks=3)
    assert not torch.equal(model.orderings[0], model.orderings[1])
    agnostic = MADE((10,), 3, [32], num_masks=3)                 # connectivity-agnostic only
    assert (agnostic.orderings == torch.arange(10)).all()
    assert not torch.equal(agnostic.layers[0].masks[0], agnostic.layers[0].masks[1])


# --- likelihood -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,d", [((6,), 2), ((3,), 4), ((3, 2), 2), ((1,), 3)])
@pytest.mark.parametrize("hidden", [[], [10, 10]])
@pytest.mark.parametrize("direct", [False, True])
def test_probabilities_sum_to_one(shape, d, hidden, direct):
    model = perturb(MADE(shape, d, hidden, ordering="random", num_masks=4, direct=direct).double())
    x = all_inputs(shape, d)
    for k in (1, 3):
        assert model.log_prob(x, n_masks=k).exp().sum().item() == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("d", [2, 3])
def test_mixture_is_mean_of_mask_probabilities(d):
    model = perturb(MADE((2, 3), d, [16], ordering="random", num_masks=4).double(), 0.5)
    x = torch.randint(0, d, (20, 2, 3))
    per_mask = torch.stack([mask_log_prob(model, x, j) for j in range(4)])
    assert not torch.allclose(per_mask[0], per_mask[1])
    assert torch.allclose(model.log_prob(x), per_mask[0])
    for k in (2, 3, 4):
        assert torch.allclose(model.log_prob(x, n_masks=k), per_mask[:k].exp().mean(0).log())


# --- sampling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,d,ordering", [((3,), 3, None), ((3,), 3, "random"), ((2, 2), 2, "random")])
def test_samples_follow_the_model(shape, d, ordering):
    model = perturb(MADE(shape, d, [16], ordering=ordering, num_masks=3).double(), 0.7)
    x = all_inputs(shape, d)
    for j in (0, 2):
        probs = model.log_prob(x).exp() if j == 0 else mask_log_prob(model, x, j).exp()
        assert total_variation(model.sample(20000, mask=j), probs, d) < 0.03


def test_ensemble_samples_follow_the_mixture():
    model = perturb(MADE((3,), 3, [16], ordering="random", num_masks=4).double(), 0.7)
    x = all_inputs((3,), 3)
    mixture, first = model.log_prob(x, n_masks=3).exp(), model.log_prob(x).exp()
    assert 0.5 * (mixture - first).abs().sum() > 0.1           # so sampling mask 0 alone would fail
    assert total_variation(model.sample(20000, n_masks=3), mixture, 3) < 0.03


@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("ordering", [None, "random"])
@pytest.mark.parametrize("hidden", [[], [12], [3, 20]])       # [3, 20]: most numbers have no unit
@pytest.mark.parametrize("direct", [False, True])
def test_fast_and_plain_samplers_agree(d, ordering, hidden, direct):
    model = perturb(MADE((2, 4), d, hidden, ordering=ordering, num_masks=3, direct=direct).double(), 0.5)
    for j in range(3):
        u = torch.rand(64, 8, dtype=torch.double)
        fast = model.sample(64, mask=j, uniforms=u)
        assert torch.equal(fast, model.sample(64, mask=j, uniforms=u, method="plain"))
        assert fast.shape == (64, 2, 4) and fast.dtype == torch.long and len(fast.unique()) > 1


def test_completion_keeps_known_entries_and_is_the_conditional():
    model = perturb(MADE((4,), 3, [16]).double(), 0.7)
    known = torch.tensor([True, True, False, False])
    given = torch.tensor([2, 0, 1, 1]).repeat(20000, 1)
    x = model.sample(20000, given=given, known=known)
    assert torch.equal(x[:, :2], given[:, :2])
    completions = torch.cat([given[:9, :2], all_inputs((2,), 3)], 1)
    conditional = model.log_prob(completions).softmax(0)
    assert total_variation(x[:, 2:], conditional, 3) < 0.03


def test_ensemble_completion_weights_masks_by_the_known_part():
    """p_mix(x_u | x_k) picks mask j with probability ~ p_j(x_k), not uniformly."""
    model = perturb(MADE((4,), 3, [16], num_masks=3).double(), 1.0)
    given = torch.tensor([2, 0, 1, 1]).repeat(20000, 1)
    completions = torch.cat([given[:9, :2], all_inputs((2,), 3)], 1)
    conditional = model.log_prob(completions, n_masks=3).softmax(0)
    uniform_choice = torch.stack([mask_log_prob(model, completions, j).softmax(0) for j in range(3)]).mean(0)
    assert 0.5 * (conditional - uniform_choice).abs().sum() > 0.1
    x = model.sample(20000, n_masks=3, given=given, known=torch.tensor([True, True, False, False]))
    assert total_variation(x[:, 2:], conditional, 3) < 0.03


def test_top_half_completion_and_its_ordering_requirement():
    shape, known = (4, 4), torch.zeros(4, 4, dtype=torch.bool)
    known[:2] = True
    given = torch.randint(0, 2, (32, 4, 4))
    model = perturb(MADE(shape, 2, [32], num_masks=2).double(), 0.5)
    u = torch.rand(32, 16, dtype=torch.double)
    for kwargs in (dict(mask=1), dict(n_masks=2)):
        x = model.sample(32, given=given, known=known, uniforms=u, **kwargs)
        assert torch.equal(x[:, :2], given[:, :2])
    x = model.sample(32, mask=1, given=given, known=known, uniforms=u)
    assert torch.equal(x, model.sample(32, mask=1, given=given, known=known, uniforms=u, method="plain"))
    with pytest.raises(ValueError, match="come first in the ordering"):
        MADE(shape, 2, [32], ordering="random").sample(32, given=given, known=known)


# --- devices, state, training -----------------------------------------------------------------

def test_state_dict_and_devices_preserve_the_model():
    kwargs = dict(input_shape=(2, 3), d=3, hidden_sizes=[16, 16], ordering="random", num_masks=3)
    a, b = perturb(MADE(**kwargs, seed=0)), MADE(**kwargs, seed=1)
    x = torch.randint(0, 3, (10, 2, 3))
    assert not torch.allclose(a.log_prob(x, n_masks=3), b.log_prob(x, n_masks=3))
    b.load_state_dict(a.state_dict())
    u = torch.rand(50, 6)
    for j in range(3):
        assert torch.equal(a.sample(50, mask=j, uniforms=u), b.sample(50, mask=j, uniforms=u))
    for k in (1, 3):
        assert torch.equal(a.log_prob(x, n_masks=k), b.log_prob(x, n_masks=k))
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        moved = copy.deepcopy(a).to(device)
        assert moved.layers[0].masks.device.type == moved.orderings.device.type == device
        assert torch.allclose(moved.log_prob(x, n_masks=3).cpu(), a.log_prob(x, n_masks=3), atol=1e-5)
        assert moved.sample(5, n_masks=3).device.type == device
        assert torch.equal(moved.to("cpu").log_prob(x), a.log_prob(x))


def test_training_cycles_masks_and_eval_uses_mask_zero():
    model = perturb(MADE((4,), 3, [16], ordering="random", num_masks=3, resample_every=2), 0.5)
    x = torch.randint(0, 3, (10, 4))
    used = []
    for _ in range(8):
        used.append(model.mask_index)
        assert torch.allclose(model.loss(x), -mask_log_prob(model, x, used[-1]).mean() / 4)
    assert used == [0, 0, 1, 1, 2, 2, 0, 0]
    assert model.mask_index == 1                     # 8 steps: advanced 4 times around 3 masks
    model.eval()
    for _ in range(3):
        assert torch.allclose(model.loss(x), -model.log_prob(x).mean() / 4)
    assert model.mask_index == 1 and model.steps == 8


def test_training_fits_a_small_dataset():
    data = torch.tensor([[0, 1, 2, 0, 1, 2], [2, 2, 0, 0, 1, 1]]).repeat(8, 1)
    model = MADE((6,), 3, [32], ordering="random", num_masks=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        model.loss(data).backward()
        opt.step()
    model.eval()
    assert model.loss(data).item() < 0.15            # near log(2)/6 = 0.116: the first dimension is a coin flip


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(d=1), "d \\(the number of categories\\) must be an integer >= 2, got 1"),
    (dict(input_shape=(2, 0)), "input_shape"),
    (dict(hidden_sizes=[8, 0]), "each hidden size .* must be an integer >= 1, got 0"),
    (dict(num_masks=0), "num_masks"),
    (dict(resample_every=0), "resample_every"),
    (dict(ordering="reversed"), "ordering must be None, 'random'"),
    (dict(ordering=[0, 1, 1, 3]), "permutation of range\\(4\\)"),
    (dict(ordering=[0, 1, 2]), "permutation of range\\(4\\)"),
    (dict(ordering=[0.0, 1.0, 2.0, 3.0]), "permutation of range\\(4\\)"),
])
def test_bad_construction_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MADE(**{**dict(input_shape=(2, 2), d=3, hidden_sizes=[8]), **kwargs})


def test_bad_calls_raise():
    model = MADE((2, 2), 3, [8], num_masks=2)
    x = torch.zeros(5, 2, 2, dtype=torch.long)
    bad = [
        (lambda: model.log_prob(x.float()), "dtype"),
        (lambda: model.log_prob(torch.zeros(5, 4, dtype=torch.long)), "trailing shape"),
        (lambda: model.loss(x + 3), "outside the categories"),
        (lambda: model.log_prob(x, n_masks=3), "n_masks"),
        (lambda: model.log_prob(x, n_masks=0), "n_masks"),
        (lambda: model(x, mask=2), "mask must be"),
        (lambda: model.sample(5, mask=-1), "mask must be"),
        (lambda: model.sample(5, n_masks=3), "n_masks"),
        (lambda: model.sample(5, mask=1, n_masks=2), "either mask or n_masks"),
        (lambda: model.sample(5, method="exact"), "method"),
        (lambda: model.sample(5, uniforms=torch.rand(5, 3)), "uniforms"),
        (lambda: model.sample(5, known=torch.ones(2, 2, dtype=torch.bool)), "both"),
        (lambda: model.sample(5, given=x, known=torch.ones(4, dtype=torch.bool)), "known must be"),
        (lambda: model.sample(5, given=x[:3], known=torch.ones(2, 2, dtype=torch.bool)), "n = 5"),
        (lambda: model.sample(5, given=x + 3, known=torch.ones(2, 2, dtype=torch.bool)), "given has values"),
    ]
    for call, match in bad:
        with pytest.raises(ValueError, match=match):
            call()
