"""Tests of MADE: the autoregressive property, normalization, the ensemble, the samplers, completion."""

import copy
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.devices import full_float32_precision
from helpers.models.made import MADE
from helpers.models.masks import connectivity_numbers, dependencies, masks_from_numbers, reachability
from helpers.training import seed


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
    logits, x = model(x, mask_id=mask), x.reshape(len(x), -1)
    if model.d == 2:
        return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(1)
    return logits.log_softmax(-1).gather(-1, x[..., None]).squeeze(-1).sum(1)


# --- masks from connectivity numbers ----------------------------------------------------------


@pytest.mark.parametrize("D,hidden", [(2, [3]), (5, [7, 4]), (9, [20, 20, 20]), (4, [])])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_connectivity_numbers_follow_the_paper(D, hidden, seed):
    ordering = torch.randperm(D, generator=torch.Generator().manual_seed(seed))
    numbers = connectivity_numbers(ordering, hidden, torch.Generator().manual_seed(seed))
    assert len(numbers) == len(hidden) + 1
    assert torch.equal(numbers[0][ordering], torch.arange(1, D + 1))  # dimension o(r) is at position r
    for below, layer, size in zip(numbers[:-1], numbers[1:], hidden):
        assert len(layer) == size and layer.dtype == torch.long
        assert int(layer.min()) >= int(below.min()) and int(layer.max()) <= D - 1


def test_masks_from_numbers_by_hand():
    """D = 3, ordering (2, 0, 1): dimension 2 first. One hidden layer numbered [1, 2, 2, 1]."""
    m0, m1 = torch.tensor([2, 3, 1]), torch.tensor([1, 2, 2, 1])
    hidden, output = masks_from_numbers([m0, m1])
    assert hidden.tolist() == [[0, 0, 1], [1, 0, 1], [1, 0, 1], [0, 0, 1]]  # m1[k] >= m0[j]
    assert output.tolist() == [
        [1, 0, 0, 1],
        [1, 1, 1, 1],
        [0, 0, 0, 0],
    ]  # m0[i] > m1[k]: dimension 2 reads nothing
    assert masks_from_numbers([m0])[0].tolist() == [
        [0, 0, 1],
        [1, 0, 1],
        [0, 0, 0],
    ]  # no hidden layer: m0[i] > m0[j]


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("hidden", [[6], [6, 3], [2, 8, 5]])
def test_mask_product_connects_only_earlier_dimensions(seed, hidden):
    """The product of the 0/1 masks (every path, whatever the weights) links input j to output i only when
    j comes before i in the ordering; with enough units, every such pair is linked."""
    D = 6
    g = torch.Generator().manual_seed(seed)
    ordering = torch.randperm(D, generator=g)
    numbers = connectivity_numbers(ordering, hidden, g)
    position = numbers[0]
    paths = reachability(masks_from_numbers(numbers))
    assert not (paths & ~(position[:, None] > position[None, :])).any()
    wide = connectivity_numbers(ordering, [400, 400], g)
    assert torch.equal(reachability(masks_from_numbers(wide)), wide[0][:, None] > wide[0][None, :])


@pytest.mark.parametrize(
    "numbers,match",
    [
        ([], "at least the inputs"),
        ([torch.tensor([1, 2, 4])], r"layer 0 \(the inputs\): numbers must lie in \[1, D\] = \[1, 3\]"),
        ([torch.tensor([1, 1, 3])], "each once"),
        ([torch.tensor([1, 2, 3]), torch.tensor([0, 1])], r"hidden layer 1: numbers must lie in \[1, D\]"),
        (
            [torch.tensor([1, 2, 3]), torch.tensor([1, 2]), torch.tensor([3, 3])],
            "hidden layer 2: all its numbers are D = 3",
        ),
        (
            [torch.tensor([1, 2, 3]), torch.tensor([], dtype=torch.long)],
            "hidden layer 1: .*non-empty 1-D integer",
        ),
        ([torch.tensor([1.0, 2.0, 3.0])], "layer 0 .*integer tensor"),
        ([torch.tensor([1, 2, 3]), torch.tensor([[1, 2]])], "hidden layer 1: .*1-D"),
    ],
)
def test_bad_numbers_name_the_layer(numbers, match):
    with pytest.raises(ValueError, match=match):
        masks_from_numbers(numbers)


@pytest.mark.parametrize(
    "ordering",
    [
        [0, 0, 1],
        [10, 30, 20],
        np.array([[0, 1], [2, 3]]),
        [0, True, 2],
        [0.0, 1.0, 2.0],
        np.array([0, 1, 2], dtype=object),
        "012",
        [],
        3,
    ],
)
def test_connectivity_numbers_refuse_what_is_not_a_permutation(ordering):
    with pytest.raises(ValueError, match="ordering must be a permutation of range\\(D\\)"):
        connectivity_numbers(ordering, [4])


def test_connectivity_numbers_accept_any_integer_permutation():
    expected = connectivity_numbers([2, 0, 1], [4], torch.Generator().manual_seed(0))
    for ordering in (
        np.array([2, 0, 1], dtype=np.uint8),
        np.flip(np.array([1, 0, 2])),
        torch.tensor([2, 0, 1]),
        [np.int64(2), 0, 1],
    ):
        numbers = connectivity_numbers(ordering, [4], torch.Generator().manual_seed(0))
        assert all(torch.equal(a, b) for a, b in zip(numbers, expected))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_connectivity_numbers_of_a_cuda_ordering_are_on_its_device():
    numbers = connectivity_numbers(torch.tensor([2, 0, 1], device="cuda"), [4, 4])
    assert all(m.device.type == "cuda" for m in numbers)


def test_model_masks_are_those_of_its_numbers():
    model = MADE((5,), 4, [7, 6], ordering="random", num_masks=3, encoding="ordinal", direct=True)
    for j in range(3):
        dims = masks_from_numbers(model.numbers(j))
        assert torch.equal(model.layers[0].masks[j], dims[0].repeat_interleave(3, dim=1))  # 3 = d - 1 units
        assert torch.equal(model.layers[1].masks[j], dims[1])
        assert torch.equal(model.layers[2].masks[j], dims[2].repeat_interleave(4, dim=0))  # d logits
        assert torch.equal(
            model.direct.masks[j],
            masks_from_numbers(model.numbers(j)[:1])[0]
            .repeat_interleave(4, dim=0)
            .repeat_interleave(3, dim=1),
        )
        # the same rule between units: each unit carries the number `unit_numbers` gives it
        units = model.unit_numbers(j)
        assert [len(m) for m in units] == [5 * 3, 7, 6, 5 * 4]
        for l, layer in enumerate(model.layers):
            keep = torch.gt if l == len(model.layers) - 1 else torch.ge
            assert torch.equal(layer.masks[j].bool(), keep(units[l + 1][:, None], units[l][None, :]))


# --- autoregressive property ------------------------------------------------------------------

ENCODED = [(2, "one-hot"), (3, "one-hot"), (7, "one-hot"), (3, "ordinal"), (7, "ordinal")]


@pytest.mark.parametrize("shape", [(5,), (2, 3), (3, 2, 2)])
@pytest.mark.parametrize("d,encoding", ENCODED)
@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("order", ["natural", "random", "explicit"])
@pytest.mark.parametrize("direct", [False, True])
def test_autoregressive_by_gradients(shape, d, encoding, depth, order, direct):
    D = math.prod(shape)
    explicit = np.random.RandomState(D).permutation(D)
    ordering = {"natural": None, "random": "random", "explicit": explicit}[order]
    model = MADE(
        shape,
        d,
        [4 * D] * depth,
        ordering=ordering,
        num_masks=3,
        seed=depth,
        direct=direct,
        encoding=encoding,
    )
    for j in range(3):
        o = model.orderings[j]
        if order != "random":
            assert o.tolist() == (list(range(D)) if ordering is None else explicit.tolist())
        dep = dependencies(model, j)  # dep[i, i']: dimension i's output reads i'
        rank = o.argsort()
        assert not (dep & ~(rank[:, None] > rank[None, :])).any(), f"mask {j} sees the present or the future"
        assert not dep[o[0]].any()
        assert dep[o[-1]].any(), "the last dimension should depend on earlier ones"
        if depth == 0 or direct:  # a masked linear path is fully connected
            assert torch.equal(dep, rank[:, None] > rank[None, :])


def test_dependencies_match_a_direct_jacobian():
    model = MADE((4,), 3, [12], ordering="random", encoding="ordinal")
    h = torch.rand(4 * 2)
    jac = torch.stack(
        [
            torch.autograd.grad(model.network(h[None])[0].reshape(-1)[k], h_)[0]
            for k in range(12)
            for h_ in [h.requires_grad_()]
        ]
    )
    expected = jac.reshape(4, 3, 4, 2).abs().sum((1, 3)) > 0
    assert torch.equal(dependencies(model, 0, h.detach()), expected)


def test_direct_connections_are_a_strict_masked_linear_path():
    model = MADE((5,), 3, [4], direct=True)
    with torch.no_grad():
        model.layers[-1].weight.zero_()  # silence the hidden path
    assert torch.equal(dependencies(model), torch.ones(5, 5, dtype=torch.bool).tril(-1))
    assert "direct.weight" in model.state_dict() and MADE((5,), 3, [4]).direct is None


def test_ordinal_encoding_is_a_thermometer_code():
    model = MADE((2,), 4, [8], encoding="ordinal")
    h = model.encode(torch.tensor([[0, 3], [2, 1]]))
    assert h.tolist() == [[0, 0, 0, 1, 1, 1], [1, 1, 0, 1, 0, 0]]
    assert model.layers[0].in_features == 2 * 3 and model.layers[-1].out_features == 2 * 4


def test_explicit_ordering_as_list_array_or_tensor():
    o = [2, 0, 3, 1]
    for ordering in (o, np.array(o), torch.tensor(o)):
        assert MADE((2, 2), 3, [8], ordering=ordering).orderings[0].tolist() == o


def test_random_orderings_and_numbers_differ_between_masks():
    model = MADE((10,), 3, [32], ordering="random", num_masks=3)
    assert not torch.equal(model.orderings[0], model.orderings[1])
    agnostic = MADE((10,), 3, [32], num_masks=3)  # connectivity-agnostic only
    assert (agnostic.orderings == torch.arange(10)).all()
    assert not torch.equal(agnostic.layers[0].masks[0], agnostic.layers[0].masks[1])


# --- likelihood -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,d,encoding",
    [
        ((6,), 2, "one-hot"),
        ((3,), 4, "one-hot"),
        ((3,), 4, "ordinal"),
        ((3, 2), 2, "one-hot"),
        ((2,), 5, "ordinal"),
    ],
)
@pytest.mark.parametrize("hidden", [[], [10, 10]])
@pytest.mark.parametrize("direct", [False, True])
def test_probabilities_sum_to_one(shape, d, encoding, hidden, direct):
    model = perturb(
        MADE(shape, d, hidden, ordering="random", num_masks=4, direct=direct, encoding=encoding).double()
    )
    x = all_inputs(shape, d)
    for k in (1, 3):
        assert model.log_prob(x, n_masks=k).exp().sum().item() == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize(
    "D,d,hidden,direct", [(1, 7, [], False), (2, 5, [12], True), (4, 3, [12], False), (10, 2, [12, 12], True)]
)
def test_probability_table_is_log_prob_of_every_input(D, d, hidden, direct):
    model = perturb(MADE((D,), d, hidden, ordering="random", num_masks=3, direct=direct).double())
    for k in (1, 3):
        table = model.probability_table(n_masks=k)
        assert table.shape == (d,) * D
        assert table.sum().item() == pytest.approx(1, abs=1e-9)
        x = all_inputs((D,), d)
        expected = model.log_prob(x, n_masks=k).exp()
        assert torch.allclose(table[tuple(x.T)], expected, rtol=1e-12, atol=0)  # entry [x] is p(x)


def test_probability_table_refuses_more_states_than_it_can_enumerate():
    with pytest.raises(ValueError, match=r"2 \*\* 21 inputs, more than 1048576: use log_prob"):
        MADE((21,), 2, [8]).probability_table()
    with pytest.raises(ValueError, match="n_masks"):
        MADE((2,), 3, [8], num_masks=2).probability_table(n_masks=3)


def test_one_dimension_is_a_histogram():
    model = perturb(MADE((1,), 3, []).double())
    assert model.log_prob(all_inputs((1,), 3)).exp().sum().item() == pytest.approx(1, abs=1e-12)
    with pytest.raises(ValueError, match="no hidden unit can feed an output"):
        MADE((1,), 3, [10])


def test_loss_matches_a_hand_computation():
    """D = 2, d = 2, no hidden layer: logit_0 = b_0, logit_1 = b_1 + w x_0."""
    model = MADE((2,), 2, [])
    with torch.no_grad():
        model.layers[0].weight.copy_(
            torch.tensor([[5.0, 7.0], [0.5, 9.0]])
        )  # only w = 0.5 is kept by the mask
        model.layers[0].bias.copy_(torch.tensor([0.2, -1.0]))
    x = torch.tensor([[1, 0], [0, 1]])
    sig = torch.sigmoid
    nll = (
        -(
            torch.log(sig(torch.tensor(0.2)))
            + torch.log(1 - sig(torch.tensor(-0.5)))
            + torch.log(1 - sig(torch.tensor(0.2)))
            + torch.log(sig(torch.tensor(-1.0)))
        )
        / 2
    )
    assert model.eval().loss(x).item() == pytest.approx(nll.item() / 2, rel=1e-6)


@pytest.mark.parametrize("d", [2, 3])
def test_mixture_is_mean_of_mask_probabilities(d):
    model = perturb(MADE((2, 3), d, [16], ordering="random", num_masks=4).double(), 0.5)
    x = torch.randint(0, d, (20, 2, 3))
    per_mask = torch.stack([mask_log_prob(model, x, j) for j in range(4)])
    assert not torch.allclose(per_mask[0], per_mask[1])
    assert torch.allclose(model.log_prob(x, n_masks=1), per_mask[0])
    assert torch.allclose(
        model.log_prob(x), per_mask.exp().mean(0).log()
    )  # by default: all the model's masks
    for k in (2, 3, 4):
        assert torch.allclose(model.log_prob(x, n_masks=k), per_mask[:k].exp().mean(0).log())


# --- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,d,ordering,encoding",
    [
        ((3,), 3, None, "one-hot"),
        ((3,), 3, "random", "one-hot"),
        ((2, 2), 2, "random", "one-hot"),
        ((3,), 4, "random", "ordinal"),
    ],
)
def test_samples_follow_the_model(shape, d, ordering, encoding):
    model = perturb(MADE(shape, d, [16], ordering=ordering, num_masks=3, encoding=encoding).double(), 0.7)
    x = all_inputs(shape, d)
    for j in (0, 2):
        probs = model.log_prob(x, n_masks=1).exp() if j == 0 else mask_log_prob(model, x, j).exp()
        assert total_variation(model.sample(20000, mask_id=j), probs, d) < 0.03


def test_ensemble_samples_follow_the_mixture():
    model = perturb(MADE((3,), 3, [16], ordering="random", num_masks=4).double(), 0.7)
    x = all_inputs((3,), 3)
    mixture, first = model.log_prob(x, n_masks=3).exp(), model.log_prob(x, n_masks=1).exp()
    assert 0.5 * (mixture - first).abs().sum() > 0.1  # so sampling mask 0 alone would fail
    assert total_variation(model.sample(20000, n_masks=3), mixture, 3) < 0.03


@pytest.mark.parametrize("d,encoding", [(2, "one-hot"), (5, "one-hot"), (5, "ordinal")])
@pytest.mark.parametrize("ordering", [None, "random"])
@pytest.mark.parametrize("hidden", [[], [12], [3, 20]])  # [3, 20]: most numbers have no unit
@pytest.mark.parametrize("direct", [False, True])
def test_fast_and_plain_samplers_agree(d, encoding, ordering, hidden, direct):
    model = perturb(
        MADE((2, 4), d, hidden, ordering=ordering, num_masks=3, direct=direct, encoding=encoding).double(),
        0.5,
    )
    for j in range(3):
        u = torch.rand(64, 8, dtype=torch.double)
        fast = model.sample(64, mask_id=j, uniforms=u)
        assert torch.equal(fast, model.sample(64, mask_id=j, uniforms=u, method="plain"))
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
    for kwargs in (dict(mask_id=1), dict(n_masks=2)):
        x = model.sample(32, given=given, known=known, uniforms=u, **kwargs)
        assert torch.equal(x[:, :2], given[:, :2])
    x = model.sample(32, mask_id=1, given=given, known=known, uniforms=u)
    assert torch.equal(x, model.sample(32, mask_id=1, given=given, known=known, uniforms=u, method="plain"))
    with pytest.raises(ValueError, match="come first in the ordering"):
        MADE(shape, 2, [32], ordering="random").sample(32, given=given, known=known)


# --- devices, state, training -----------------------------------------------------------------


def test_state_dict_and_devices_preserve_the_model():
    # At full float32 precision: with TF32 on (set_float32_matmul_precision("high")) CUDA differs by ~1e-2.
    kwargs = dict(input_shape=(2, 3), d=3, hidden_sizes=[16, 16], ordering="random", num_masks=3)
    a, b = perturb(MADE(**kwargs, seed=0)), MADE(**kwargs, seed=1)
    x = torch.randint(0, 3, (10, 2, 3))
    assert not torch.allclose(a.log_prob(x, n_masks=3), b.log_prob(x, n_masks=3))
    b.load_state_dict(a.state_dict())
    u = torch.rand(50, 6)
    for j in range(3):
        assert torch.equal(a.sample(50, mask_id=j, uniforms=u), b.sample(50, mask_id=j, uniforms=u))
    for k in (1, 3):
        assert torch.equal(a.log_prob(x, n_masks=k), b.log_prob(x, n_masks=k))
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        moved = copy.deepcopy(a).to(device)
        assert moved.layers[0].masks.device.type == moved.orderings.device.type == device
        with full_float32_precision():
            assert torch.allclose(moved.log_prob(x, n_masks=3).cpu(), a.log_prob(x, n_masks=3), atol=1e-5)
        assert moved.sample(5, n_masks=3).device.type == device
        assert torch.equal(moved.to("cpu").log_prob(x), a.log_prob(x))


def _legacy_state(model):
    """The state as saved before masks left it: with each layer's mask stack."""
    state = model.state_dict()
    for i, layer in enumerate(model.layers):
        state[f"layers.{i}.masks"] = layer.masks.clone()
    if model.direct is not None:
        state["direct.masks"] = model.direct.masks.clone()
    return state


def test_masks_stay_out_of_the_state_and_are_rebuilt_on_load(tmp_path):
    kwargs = dict(input_shape=(3, 3), d=3, hidden_sizes=[64, 64], ordering="random", num_masks=8, direct=True)
    a, b = perturb(MADE(**kwargs, seed=0)), MADE(**kwargs, seed=1)
    state = a.state_dict()
    assert not any(key.endswith("masks") for key in state)
    mask_bytes = sum(m.masks.numel() for m in [*a.layers, a.direct])
    assert sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v)) < mask_bytes
    torch.save(state, tmp_path / "model.pt")
    b.load_state_dict(torch.load(tmp_path / "model.pt"))  # other orderings and numbers: masks rebuilt
    for la, lb in zip([*a.layers, a.direct], [*b.layers, b.direct]):
        assert torch.equal(la.masks, lb.masks)
    x = torch.randint(0, 3, (10, 3, 3))
    assert torch.equal(a.log_prob(x), b.log_prob(x))


def test_states_saved_with_their_masks_still_load_and_are_checked():
    kwargs = dict(input_shape=(4,), d=2, hidden_sizes=[16], ordering="random", num_masks=3, direct=True)
    a, b = perturb(MADE(**kwargs, seed=0)), MADE(**kwargs, seed=1)
    b.load_state_dict(_legacy_state(a))  # strict: the mask keys are accepted
    x = torch.randint(0, 2, (10, 4))
    assert torch.equal(a.log_prob(x), b.log_prob(x))
    for key in ("layers.0.masks", "direct.masks"):
        bad = _legacy_state(a)
        bad[key] = 1 - bad[key]
        with pytest.raises(RuntimeError, match=f"{key} in the state differs from the masks rebuilt"):
            MADE(**kwargs).load_state_dict(bad)


def test_training_cycles_masks_and_eval_uses_the_mixture():
    model = perturb(MADE((4,), 3, [16], ordering="random", num_masks=3, resample_every=2), 0.5)
    x = torch.randint(0, 3, (10, 4))
    used = []
    for _ in range(8):
        used.append(model.mask_id)
        assert torch.allclose(model.loss(x), -mask_log_prob(model, x, used[-1]).mean() / 4)
        model.next_mask()
    assert used == [0, 0, 1, 1, 2, 2, 0, 0]
    assert model.mask_id == 1  # 8 steps: advanced 4 times around 3 masks
    model.eval()
    for _ in range(3):
        assert torch.allclose(model.loss(x), -model.log_prob(x, n_masks=3).mean() / 4)
    assert model.mask_id == 1 and model.steps == 8


def test_saved_and_loaded_model_continues_with_the_same_mask(tmp_path):
    kwargs = dict(input_shape=(4,), d=3, hidden_sizes=[16], ordering="random", num_masks=3, resample_every=2)
    model = MADE(**kwargs)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randint(0, 3, (10, 4))
    for _ in range(5):
        opt.zero_grad()
        model.loss(x).backward()
        opt.step()
        model.next_mask()
    torch.save(model.state_dict(), tmp_path / "model.pt")
    loaded = MADE(**kwargs)
    loaded.load_state_dict(torch.load(tmp_path / "model.pt"))
    assert loaded.steps == 5 and loaded.mask_id == model.mask_id == 2
    for _ in range(3):
        assert torch.equal(loaded.loss(x), model.loss(x)) and loaded.mask_id == model.mask_id
        model.next_mask(), loaded.next_mask()


def test_computing_the_loss_leaves_the_mask_cycle_where_it_is():
    """The mask moves on in next_mask, which the training loop calls after an update, never as a side effect of
    computing a loss (a loss computed twice, for a check or a plot, must not skip a mask)."""
    model = MADE((4,), 3, [16], num_masks=3)
    x = torch.randint(0, 3, (10, 4))
    for _ in range(4):
        model.loss(x)
    assert model.steps == 0 and model.mask_id == 0
    model.next_mask()
    assert model.steps == 1 and model.mask_id == 1


def test_bad_input_to_loss_does_not_advance_the_mask_cycle():
    model = MADE((4,), 3, [16], num_masks=3)
    for bad in (torch.zeros(0, 4, dtype=torch.long), torch.full((2, 4), 3), torch.zeros(2, 4)):
        with pytest.raises(ValueError):
            model.loss(bad)
    assert model.steps == 0


def test_training_fits_a_small_dataset():
    data = torch.tensor([[0, 1, 2, 0, 1, 2], [2, 2, 0, 0, 1, 1]]).repeat(8, 1)
    model = MADE((6,), 3, [32], ordering="random", num_masks=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        model.loss(data).backward()
        opt.step()
        model.next_mask()
    model.eval()
    assert model.loss(data).item() < 0.15  # near log(2)/6 = 0.116: the first dimension is a coin flip


# --- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(d=1), "d \\(the number of categories\\) must be an integer >= 2, got 1"),
        (dict(d=True), "d .* got True"),
        (dict(input_shape=(2, 0)), "input_shape"),
        (dict(input_shape=(2, 2.0)), "input_shape"),
        (dict(hidden_sizes=[8, 0]), "each hidden size .* must be an integer >= 1, got 0"),
        (dict(hidden_sizes=8), "hidden_sizes must be a list of hidden layer widths"),
        (dict(num_masks=0), "num_masks"),
        (dict(resample_every=0), "resample_every"),
        (dict(ordering="reversed"), "ordering must be None, 'random'"),
        (dict(ordering=[0, 1, 1, 3]), "permutation of range\\(4\\)"),
        (dict(ordering=[0, 1, 2]), "permutation of range\\(4\\)"),
        (dict(ordering=[0.0, 1.0, 2.0, 3.0]), "permutation of range\\(4\\)"),
        (dict(encoding="onehot"), "encoding must be 'one-hot' or, for d > 2, 'ordinal'"),
        (dict(encoding="ordinal", d=2), "encoding must be .* with d = 2"),
        (dict(ordering=[0, True, 2, 3]), "permutation of range\\(4\\), got \\[0, True, 2, 3\\]"),
        (dict(ordering=np.array([0, 1, 2, 3], dtype=bool)), "permutation of range\\(4\\)"),
        (dict(direct="no"), "direct must be True or False .* got 'no'"),
        (dict(direct=1), "direct must be True or False"),
        (dict(seed=-1), "seed \\(a random seed\\) must be an integer in"),
        (dict(seed=1.5), "seed"),
    ],
)
def test_bad_construction_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MADE(**{**dict(input_shape=(2, 2), d=3, hidden_sizes=[8]), **kwargs})


def test_numpy_integers_are_integers():
    model = MADE((np.int64(2), 2), np.int64(3), [np.int32(8)], num_masks=np.int64(2))
    x = torch.zeros(5, 2, 2, dtype=torch.long)
    assert model(x, mask_id=np.int64(1)).shape == (5, 4, 3)
    assert model.sample(np.int64(3), mask_id=np.int64(0)).shape == (3, 2, 2)
    assert model.log_prob(x, n_masks=np.int64(2)).shape == (5,)


_model = MADE((2, 2), 3, [8], num_masks=2)
_x = torch.zeros(5, 2, 2, dtype=torch.long)
_known = torch.ones(2, 2, dtype=torch.bool)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: _model.log_prob(_x.float()), "dtype"),
        (lambda: _model.log_prob(torch.zeros(5, 4, dtype=torch.long)), "trailing shape"),
        (
            lambda: _model.log_prob(torch.zeros(2, 5, 2, 2, dtype=torch.long)),
            "x must have shape \\(B, \\*input_shape\\) = \\(B, 2, 2\\), with one batch dimension, got shape \\(2, 5, 2, 2\\)",
        ),
        (lambda: _model.loss(torch.zeros(2, 5, 2, 2, dtype=torch.long)), "one batch dimension"),
        (lambda: _model.loss(_x + 3), "outside the categories"),
        (lambda: _model.loss(_x[:0]), "empty batch"),
        (lambda: _model.log_prob(_x, n_masks=3), "n_masks .* in \\[1, 2\\], got 3"),
        (lambda: _model.log_prob(_x, n_masks=0), "n_masks"),
        (lambda: _model(_x, mask_id=2), "mask_id .* in \\[0, 1\\], got 2"),
        (lambda: _model(_x, mask_id=True), "mask_id .* got True"),
        (lambda: _model.sample(5, mask_id=-1), "mask_id"),
        (lambda: _model.sample(5, mask_id=False), "mask_id"),
        (lambda: _model.sample(5, n_masks=3), "n_masks"),
        (lambda: _model.sample(5, mask_id=1, n_masks=2), "either mask_id .* or n_masks"),
        (lambda: _model.sample(-1), "n \\(the number of samples\\) must be an integer >= 1, got -1"),
        (lambda: _model.sample(2.5), "n \\(the number of samples\\).* got 2.5"),
        (lambda: _model.sample(5, method="exact"), "method"),
        (lambda: _model.sample(5, uniforms=torch.rand(5, 3)), "uniforms must have shape"),
        (lambda: _model.sample(5, uniforms=np.random.rand(5, 4)), "uniforms must be a floating-point tensor"),
        (
            lambda: _model.sample(5, uniforms=torch.full((5, 4), float("nan"))),
            "uniforms must lie in \\[0, 1\\)",
        ),
        (lambda: _model.sample(5, uniforms=torch.full((5, 4), 1.0)), "uniforms must lie in \\[0, 1\\)"),
        (lambda: _model.sample(5, uniforms=torch.full((5, 4), -0.1)), "uniforms must lie in \\[0, 1\\)"),
        (lambda: _model.sample(5, known=_known), "both"),
        (lambda: _model.sample(5, given=_x, known=torch.ones(4, dtype=torch.bool)), "known must be"),
        (lambda: _model.sample(5, given=_x[:3], known=_known), "n = 5"),
        (lambda: _model.sample(5, given=_x + 3, known=_known), "given has values"),
    ],
    ids=lambda v: "" if callable(v) else v,
)
def test_bad_calls_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- sampling precision -----------------------------------------------------------------------


def _bernoulli(p, dtype=torch.float32):
    """A one-dimensional MADE (d = 2) whose single bit is 1 with probability p, in `dtype`."""
    model = MADE((1,), 2, []).to(dtype)
    with torch.no_grad():
        model.layers[0].weight.zero_()
        model.layers[0].bias.fill_(math.log(p) - math.log1p(-p))
    return model


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_models_sample_rare_values_at_their_rate(dtype):
    # in bfloat16 uniforms are multiples of 2^-8, and a probability of 1.23e-4 came out 18 times too often
    model = _bernoulli(1.23e-4, dtype)
    p = torch.sigmoid(model.layers[0].bias.float()).item()  # the model's own probability, after rounding
    n = 400_000
    ones = int(model.sample(n).sum())
    assert abs(ones - n * p) < 5 * math.sqrt(n * p)  # 5 standard deviations


def test_uniforms_are_compared_in_their_own_precision():
    # float64 uniforms just below 1 used to round to 1.0 in a float32 model, so p = 1 - 1e-12 gave 0
    near_one = torch.full((4, 1), 1 - 2**-30, dtype=torch.float64)  # below p, but 1.0 in float32
    assert _bernoulli(1 - 1e-12).sample(4, uniforms=near_one).eq(1).all()
    # u = 0 must not pick a category whose probability is 0 (cdf[0] = 0 <= u)
    model = MADE((1,), 3, [])
    with torch.no_grad():
        model.layers[0].weight.zero_()
        model.layers[0].bias.copy_(torch.tensor([-200.0, 0.0, 0.0]))  # p(0) underflows to 0 in float32
    for method in ("fast", "plain"):
        assert model.sample(3, uniforms=torch.zeros(3, 1), method=method).eq(1).all()


def test_orthogonal_init_gives_orthonormal_weights_zero_biases_and_leaves_the_default_alone():
    seed(0)
    default = MADE((28, 28), 2, [50], direct=True)
    seed(0)
    named = MADE((28, 28), 2, [50], direct=True, init="pytorch")
    assert all(torch.equal(a, b) for a, b in zip(default.parameters(), named.parameters()))
    seed(0)
    orthogonal = MADE((28, 28), 2, [50], direct=True, init="orthogonal")
    for layer in orthogonal.masked_layers():
        w = layer.weight.double()
        small = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # the shorter side is orthonormal
        assert torch.allclose(small, torch.eye(min(w.shape), dtype=torch.float64), atol=1e-5)
        assert layer.bias is None or not layer.bias.any()
    assert orthogonal.init == "orthogonal" and default.init == "pytorch"
    with pytest.raises(ValueError, match=r"init must be one of 'pytorch', 'orthogonal', got 'xavier'"):
        MADE((4,), 2, [8], init="xavier")


def test_a_bit_is_drawn_by_the_same_inverse_cdf_rule_as_d_categories():
    """One rule for every d: category k when cdf[k - 1] <= u < cdf[k], so category 0 gets the low uniforms; a bit
    with logit ℓ is the two-category draw with logits (0, ℓ): x = 1 exactly when u >= p(x = 0) = σ(−ℓ)."""
    from helpers.models.sampling import draw_categories

    generator = torch.Generator().manual_seed(0)
    logits, u = 3 * torch.randn(10000, generator=generator), torch.rand(10000, generator=generator)
    as_two_categories = torch.stack([torch.zeros_like(logits), logits], 1)
    assert torch.equal(draw_categories(logits, u), draw_categories(as_two_categories, u))
    p_zero = torch.sigmoid(-torch.tensor([0.7, -2.0]))
    below = torch.nextafter(p_zero, torch.zeros(2))
    assert draw_categories(torch.tensor([0.7, -2.0]), below).tolist() == [0, 0]
    assert draw_categories(torch.tensor([0.7, -2.0]), p_zero).tolist() == [1, 1]
