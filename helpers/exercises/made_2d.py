"""The checks of notebook 3's MADE and its answer: the masked layer, the one-hot MADE class, q2_a; and the
comparison with the package's MADE that the notebook's equality cell runs.

A class is judged by what it does, never by its attribute names: the layer by its Jacobian and its parameters'
gradients, the model by enumeration (probabilities summing to 1), by changing one input at a time (what each
output reads), by the gradients of its parameters against the package's model holding the same weights (which
weights its masks keep), by moving it to another device, and by its samples (a chi-square test against its own
probabilities, inverse-CDF draws from given uniforms). Weights are copied between a learner's model and the
package's in the order `model.parameters()` yields them: layer by layer from the input, a weight (out, in) and
a bias (out,), as nn.Linear layers in an nn.ModuleList or an nn.Sequential give them.
"""

import itertools

import numpy as np
import torch

from ..devices import full_float32_precision
from ..models.made import MADE
from ..models.masks import masks_from_numbers
from ..models.sampling import draw_categories
from .harness import (
    ExerciseFailed,
    answer_data,
    build_model,
    check_answer,
    check_model_class,
    chi_square,
    isolated,
    moves_with_the_model,
    passed,
    prepare,
    run_method,
    tensor_result,
)

MADE_SIGNATURE = "OneHotMADE(D, d, hidden_sizes, ordering=None, seed=0)"
MADE_METHODS = (
    "forward(x) -> logits (B, D, d); log_prob(x) -> log p(x) (B,); sample(n, u=None) -> x, long (n, D)"
)
LAYER_SIGNATURE = "MaskedLinear(in_features, out_features, mask)"


def _expected(name):
    """What the methods of the learner's class `name` should do, for the messages of run_method."""
    return MADE_METHODS if name == "OneHotMADE" else "forward(x) -> (B, out)"


# --- the masked layer -------------------------------------------------------------------------------------------


def check_masked_linear(cls):
    """Check MaskedLinear(in_features, out_features, mask): (B, in) -> (B, out), an affine map whose weight is
    multiplied by the fixed 0/1 mask (out, in) at every call, the mask a buffer and not a parameter."""
    name = "MaskedLinear"
    check_model_class(name, cls, LAYER_SIGNATURE, "forward(x) -> (B, out)")
    with isolated():
        n_in, n_out = 6, 4
        mask = (torch.rand(n_out, n_in) < 0.5).to(torch.uint8)
        mask[0], mask[:, 0] = 0, 1  # a row with nothing but column 0 kept
        layer = build_model(name, cls, LAYER_SIGNATURE, n_in, n_out, mask)
        trainable = [p for p in layer.parameters() if p.requires_grad]
        sizes = sorted(tuple(p.shape) for p in trainable)
        if sizes != sorted([(n_out, n_in), (n_out,)]):
            as_parameter = sizes.count((n_out, n_in)) == 2
            raise ExerciseFailed(
                f"{name}({n_in}, {n_out}, mask) has trainable parameters of shapes {sizes}, should be a weight "
                f"{(n_out, n_in)} and a bias {(n_out,)}"
                + (
                    ": the mask is a parameter, so the optimizer would change it; keep it fixed, as a buffer"
                    if as_parameter
                    else ", as nn.Linear(in_features, out_features) has"
                )
            )
        x = torch.randn(5, n_in, requires_grad=True)
        out = run_method(name, "forward", layer, x, expected=_expected(name))
        tensor_result(f"{name}.forward of x (5, {n_in})", out, (5, n_out), "one output per unit")
        jacobian = torch.autograd.functional.jacobian(lambda v: layer(v[None])[0], torch.randn(n_in))
        kept, dropped = jacobian != 0, mask == 0
        if (kept & dropped).any():
            k, j = (kept & dropped).nonzero()[0].tolist()
            raise ExerciseFailed(
                f"{name}: output {k} changes with input {j}, but mask[{k}, {j}] = 0 drops that weight: multiply the "
                f"weight (out, in) by the mask, entry by entry, in every forward pass"
            )
        if (~kept & ~dropped).any():
            k, j = (~kept & ~dropped).nonzero()[0].tolist()
            raise ExerciseFailed(
                f"{name}: output {k} does not change with input {j}, though mask[{k}, {j}] = 1 keeps that weight: "
                f"the mask (out, in) multiplies the weight (out, in) as it is, row k for output k, not transposed"
            )
        shift = run_method(name, "forward", layer, torch.zeros(1, n_in), expected=_expected(name))
        if not torch.allclose(out, x @ jacobian.T + shift, atol=1e-5):
            raise ExerciseFailed(
                f"{name}: forward is not the affine map x (W ⊙ mask)ᵀ + b: no nonlinearity inside the layer (the "
                f"MADE puts its ReLUs between layers)"
            )
        out.sum().backward()
        for p in trainable:
            if p.dim() == 2 and p.grad is not None and (p.grad[dropped] != 0).any():
                raise ExerciseFailed(
                    f"{name}: weights that the mask drops still get gradients, so training grows them back: apply "
                    f"the mask in forward, every call (masking the weight once, when the layer is built, is not "
                    f"enough)"
                )
        moves_with_the_model(name, layer, x.detach(), "forward pass")
    passed(
        _layer_exercise(),
        cls,
        "output k changes with input j exactly where mask[k, j] = 1, the layer is affine, masked weights get no "
        "gradient, the mask moves with the layer (a buffer) and only the weight and bias are trained",
    )


def _layer_exercise():
    from .harness import Exercise

    return Exercise("MaskedLinear", ("in_features", "out_features", "mask"), "a layer", None)


# --- the model and the package's -------------------------------------------------------------------------------


def _layer_parameters(name, model, package):
    """The learner's parameters paired with the package's (weight, bias of each layer), checked by shape."""
    mine, theirs = list(model.parameters()), list(package.parameters())
    if [tuple(p.shape) for p in mine] != [tuple(p.shape) for p in theirs]:
        extra = (
            " (one per mask among them? A mask registered as a parameter would be trained: keep it a buffer)"
            if len(mine) > len(theirs)
            else ""
        )
        raise ExerciseFailed(
            f"{name}: model.parameters() yields tensors of shapes {[tuple(p.shape) for p in mine]}{extra}; a MADE "
            f"with these sizes has, layer by layer from the input, a weight (out, in) and a bias (out,): "
            f"{[tuple(p.shape) for p in theirs]}. Build it from one masked layer per weight matrix (nn.Linear's "
            f"weight and bias), in order, in an nn.ModuleList or an nn.Sequential"
        )
    return list(zip(mine, theirs))


def _log_prob(name, model, x):
    out = run_method(name, "log_prob", model.log_prob, x, expected=_expected(name))
    what = "log p(x), one per example: the sum over dimensions of log p(x_i | the x before i)"
    return tensor_result(f"{name}.log_prob of x {tuple(x.shape)}", out, (len(x),), what)


def _logits(name, model, x, D, d):
    out = run_method(name, "forward", model, x, expected=_expected(name))
    return tensor_result(
        f"{name}.forward of x ({len(x)}, {D})", out, (len(x), D, d), "the logits, d per dimension"
    )


def _randomize(model, std, generator):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * std)


def compare_with_package(
    cls, D, d, hidden_sizes, ordering=None, seed=0, n_samples=10000, connectivity_numbers=None
):
    """A MADE class against the package's MADE built alike, holding the same (random) weights: the same weights
    kept by the masks (the gradients of both models' parameters), the same log p on all d ** D inputs, and the
    same samples from the same uniforms (the package's plain and one-pass samplers). Raises ExerciseFailed
    saying what differs; returns what was compared, for printing. Copies weights by the order of
    `model.parameters()` (see the module's docstring). connectivity_numbers: the learner's function, which the
    package's MADE then numbers its units with (the learner's class uses it; the package's own by default)."""
    name = "OneHotMADE"
    check_model_class(name, cls, MADE_SIGNATURE, MADE_METHODS)
    with isolated():
        package = _package(D, d, hidden_sizes, ordering, seed, connectivity_numbers)
        ours = build_model(name, cls, MADE_SIGNATURE, D, d, list(hidden_sizes), ordering=ordering, seed=seed)
        pairs = _layer_parameters(name, ours, package)
        _randomize(package, 0.1, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            for mine, theirs in pairs:
                mine.copy_(theirs)
        every_x = torch.cartesian_prod(*[torch.arange(d)] * D).reshape(-1, D)
        u = torch.rand(n_samples, D, generator=torch.Generator().manual_seed(seed))
        with full_float32_precision():
            _same_weights_kept(name, ours, package, pairs, every_x)
            with torch.no_grad():
                log_p, log_p_package = _log_prob(name, ours, every_x), package.log_prob(every_x)
            largest = float((log_p.double() - log_p_package.double()).abs().max())
            if largest > 1e-5:
                i = int((log_p.double() - log_p_package.double()).abs().argmax())
                raise ExerciseFailed(
                    f"{name}: with the package's weights, log p(x = {every_x[i].tolist()}) is {float(log_p[i]):.6g}, "
                    f"the package's MADE gives {float(log_p_package[i]):.6g} (D = {D}, d = {d}): the masks keep the "
                    f"same weights, so the forward pass differs: one-hot inputs, a ReLU after every hidden layer "
                    f"(none after the last), d logits per dimension, then log_prob sums log softmax over each "
                    f"dimension's d values"
                )
            x = _samples(name, ours, u, D, d)
            x_plain = package.sample(len(u), uniforms=u, method="plain")
            x_fast = package.sample(len(u), uniforms=u)
        different = int((x != x_plain).any(1).sum())
        if different or not torch.equal(x_plain, x_fast):
            raise ExerciseFailed(
                f"{name}: with the package's weights, {different} of {len(u)} samples differ from the package's "
                f"from the same uniforms u: draw the dimensions in the ordering, each from a forward pass on the "
                f"dimensions drawn so far, x_i the value k with F(k − 1) ≤ u_i < F(k), F the cumulative sum of "
                f"its softmax"
            )
        return {
            "ordering": package.orderings[0].tolist(),
            "inputs": len(every_x),
            "largest difference": largest,
            "sum of p": float(log_p.double().exp().sum()),
            "samples": len(u),
        }


def _package(D, d, hidden_sizes, ordering, seed, connectivity_numbers):
    numbered = {} if connectivity_numbers is None else {"connectivity_numbers": connectivity_numbers}
    return MADE((D,), d, list(hidden_sizes), ordering=ordering, seed=seed, **numbered)


def _same_weights_kept(name, ours, package, pairs, every_x):
    """The gradients of Σ w·log p over every input, for fixed weights w, to each layer's weight: zero exactly where
    the package's mask drops the weight, as in the package's model."""
    weights = 0.5 + torch.rand(len(every_x), generator=torch.Generator().manual_seed(1))
    mine = torch.autograd.grad(
        (_log_prob(name, ours, every_x) * weights).sum(), [p for p, _ in pairs], allow_unused=True
    )
    theirs = torch.autograd.grad((package.log_prob(every_x) * weights).sum(), [p for _, p in pairs])
    numbers, L = package.numbers(), len(package.layers) - 1
    for l, layer in enumerate(package.layers):
        g_mine, g_theirs, mask = mine[2 * l], theirs[2 * l], layer.masks[0].bool()
        if g_mine is None:
            raise ExerciseFailed(
                f"{name}: log_prob does not depend on the weight of layer {l} ({tuple(g_theirs.shape)}): every "
                f"layer must take part in the forward pass, and log p be computed with torch operations on it"
            )
        extra, missing = (g_mine != 0) & ~mask, (g_mine == 0) & (g_theirs != 0)
        if not (extra.any() or missing.any()):
            continue
        k, j = (extra if extra.any() else missing).nonzero()[0].tolist()
        what = "keeps" if extra.any() else "drops"
        unit = lambda numbers_of, index: f"(number {int(numbers_of[index])})"  # noqa: E731
        units = package.unit_numbers()
        reused = _reused_numbers(g_mine != 0, l, numbers, package)
        raise ExerciseFailed(
            f"{name}: layer {l} ({_layer_name(l, L)}) {what} the weight from unit {j} {unit(units[l], j)} to unit {k} "
            f"{unit(units[l + 1], k)}, where the package's MADE with the same seed "
            f"{'drops it' if what == 'keeps' else 'keeps it'} (its gradient is zero exactly at the dropped "
            f"weights). "
            + (
                reused
                or "Number the units with connectivity_numbers and a generator seeded with seed, turn the numbers "
                "into masks with masks_from_numbers, widen the first mask's columns and the last mask's rows to d "
                "units per dimension (every unit of a dimension carries its number), and multiply each weight by "
                "its mask in every forward pass"
            )
        )


def _reused_numbers(kept, l, numbers, package):
    """The known mistake that the learner's kept weights of layer l are, if they are one: hidden layer 1's numbers
    reused for the deeper hidden layers (a subset of that mask: a unit whose ReLU is off on every input has zero
    gradients)."""
    L = len(numbers) - 1
    if l == 0 or len({len(m) for m in numbers[1:]}) != 1:
        return None
    mask = masks_from_numbers([numbers[0], *[numbers[1]] * L])[l]
    if l == L:
        mask = mask.repeat_interleave(package.d, dim=0)
    if (kept & ~mask.bool()).any():
        return None
    return (
        "These are the masks of hidden layer 1's numbers reused for the deeper hidden layers: each hidden layer "
        "has numbers of its own, drawn from the generator in turn (one tensor per hidden layer)"
    )


def _samples(name, model, u, D, d):
    x = run_method(name, "sample", model.sample, len(u), u, expected=_expected(name))
    if not torch.is_tensor(x) or tuple(x.shape) != (len(u), D) or x.dtype != torch.long:
        got = f"{x.dtype} {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
        raise ExerciseFailed(
            f"{name}.sample(n, u) must return n samples, a long tensor (n, D) = ({len(u)}, {D}), got {got}"
        )
    if int(x.min()) < 0 or int(x.max()) > d - 1:
        raise ExerciseFailed(
            f"{name}.sample must return values in [0, d − 1] = [0, {d - 1}], got [{int(x.min())}, {int(x.max())}]"
        )
    return x


def _reads_only_earlier_inputs(name, model, D, d, ordering, package):
    """Output i's logits, over every input, change with x_j only when x_j comes before x_i in the ordering, and
    with every x_j that the package's MADE of the same seed connects to it."""
    every_x = torch.cartesian_prod(*[torch.arange(d)] * D).reshape(-1, D)
    with torch.no_grad():
        logits = _logits(name, model, every_x, D, d).double().reshape(*[d] * D, D, d)
        allowed = package.numbers()[0][None, :] < package.numbers()[0][:, None]  # [i, j]: j before i
        connected = _connected(package)
    changes = torch.zeros(D, D, dtype=torch.bool)  # [i, j]: the logits of x_i change with x_j
    for i, j in itertools.product(range(D), range(D)):
        spread = logits[..., i, :].amax(j) - logits[..., i, :].amin(j)
        changes[i, j] = bool((spread.abs() > 1e-6).any())
    natural = torch.arange(D)[None, :] < torch.arange(D)[:, None]
    ignored = (
        ". It reads the dimensions as if in the order 0, 1, ..., D − 1: number the inputs by their positions in "
        "the ordering given"
        if list(ordering) != list(range(D)) and not (changes & ~natural).any()
        else ""
    )
    for i, j in itertools.product(range(D), range(D)):
        if changes[i, j] and not allowed[i, j]:
            where = "itself" if i == j else f"x_{j}, which comes after it"
            raise ExerciseFailed(
                f"{name}: built with ordering {ordering}, the logits of x_{i} change with {where}: "
                f"p(x_{i} | ...) may read only the dimensions before x_{i} in the ordering. The output mask is "
                f"strict (a unit numbered m feeds only outputs numbered above m), the hidden masks are not, and "
                f"the ordering given decides the inputs' numbers{ignored}"
            )
    for i, j in itertools.product(range(D), range(D)):
        if not changes[i, j] and connected[i, j]:
            raise ExerciseFailed(
                f"{name}: built with ordering {ordering}, the logits of x_{i} never change with x_{j}, which comes "
                f"before it and which the package's MADE with the same seed lets it read: your masks drop "
                f"connections the construction keeps"
                + (ignored or " (hidden masks compare with ≥, and every layer takes part)")
            )


def _connected(package):
    """[i, j]: the package's MADE lets output i read input j (the product of its masks)."""
    from ..models.masks import dependencies

    with torch.no_grad():
        for p in package.parameters():
            p.fill_(0.05)
    return dependencies(package)


def check_one_hot_made(cls, connectivity_numbers=None):
    """Check the class OneHotMADE(D, d, hidden_sizes, ordering=None, seed=0) by what it does: shapes, log p summing
    to 1 over every input, each output reading only the dimensions before it for every ordering given, the masks
    of the package's MADE with the same seed, a model that moves with .to(device), and samples that follow its own
    probabilities, drawn by inverse CDF from the uniforms given. connectivity_numbers: the learner's function,
    which their class numbers its units with (the package's own by default)."""
    name = "OneHotMADE"
    check_model_class(name, cls, MADE_SIGNATURE, MADE_METHODS)
    cases = [(3, 4, [8, 8], [2, 0, 1], 1), (2, 5, [16], None, 0), (4, 3, [12, 12, 12], [3, 1, 0, 2], 2)]
    with isolated():
        for D, d, hidden, ordering, seed in cases:
            model = build_model(name, cls, MADE_SIGNATURE, D, d, hidden, ordering=ordering, seed=seed)
            x = torch.randint(0, d, (7, D))
            _logits(name, model, x, D, d)
            log_p = _log_prob(name, model, x)
            if not log_p.requires_grad:
                raise ExerciseFailed(
                    f"{name}.log_prob carries no gradient to the model's parameters: compute it with torch "
                    f"operations (no .item(), .detach(), numpy or torch.no_grad()), or training cannot change them"
                )
            _randomize(model, 0.5, torch.Generator().manual_seed(seed))
            package = _package(D, d, hidden, ordering, seed, connectivity_numbers)
            _reads_only_earlier_inputs(
                name, model, D, d, list(range(D)) if ordering is None else ordering, package
            )
            every_x = torch.cartesian_prod(*[torch.arange(d)] * D).reshape(-1, D)
            with torch.no_grad():
                total = float(_log_prob(name, model, every_x).double().exp().sum())
            if abs(total - 1) > 1e-4:
                raise ExerciseFailed(
                    f"{name}: with random weights (D = {D}, d = {d}), exp(log_prob) over all {len(every_x)} inputs "
                    f"sums to {total:.4f}, not 1: log p(x) is the sum over dimensions i of log softmax(logits_i)[x_i], "
                    f"each softmax over the d values of one dimension (the last axis of the logits), in log space"
                )
            moves_with_the_model(name, model, x, "forward pass")
        D, d, hidden, ordering, seed = cases[0]
        model = build_model(name, cls, MADE_SIGNATURE, D, d, hidden, ordering=ordering, seed=seed)
        _randomize(model, 1.0, torch.Generator().manual_seed(5))
        n, p_value = 20000, _sampling(name, model, D, d, ordering)
        for D, d, hidden, ordering, seed in cases:
            compare_with_package(cls, D, d, hidden, ordering, seed, 500, connectivity_numbers)
    passed(
        _made_exercise(),
        cls,
        f"the right shapes; log p sums to 1 over every input; each output reads only the dimensions before it, for "
        f"orderings [2, 0, 1], [0, 1] and [3, 1, 0, 2]; the masks, log p and samples of the package's MADE with the "
        f"same weights and seed; it moves with .to(device); and {n} samples follow its own probabilities "
        f"(chi-square p = {p_value:.2f})",
    )


def _made_exercise():
    from .harness import Exercise

    return Exercise("OneHotMADE", ("D", "d", "hidden_sizes", "ordering", "seed"), "a model", None)


def _sampling(name, model, D, d, ordering):
    n = 20000
    every_x = torch.cartesian_prod(*[torch.arange(d)] * D).reshape(-1, D)
    u = torch.rand(n, D, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        x = _samples(name, model, u, D, d)
        probabilities = _log_prob(name, model, every_x).double().exp()
    if (x == x[0]).all():
        raise ExerciseFailed(
            f"{name}.sample: all {n} samples are x = {x[0].tolist()}, whatever the uniforms u: taking the most "
            f"likely value of each dimension (argmax) is not sampling. Draw each by inverse CDF from its softmax"
        )
    counts = torch.bincount((x * d ** torch.arange(D - 1, -1, -1)).sum(1), minlength=d**D).double()
    statistic, dof, p_value = chi_square(counts, n * probabilities)
    if p_value < 1e-4:
        worst = int(((counts - n * probabilities).abs() / (n * probabilities).sqrt()).argmax())
        raise ExerciseFailed(
            f"{name}.sample: the samples do not follow the model's own probabilities: with ordering {ordering}, "
            f"{n} samples give chi-square = {statistic:.3g} with {dof} degrees of freedom (p = {p_value:.1e}); "
            f"x = {every_x[worst].tolist()} was drawn {counts[worst] / n:.3g} of the time against p(x) = "
            f"{probabilities[worst]:.3g}. Draw the dimensions in the model's ordering (not 0, 1, ...), each from a "
            f"forward pass on the dimensions drawn so far, from the softmax of its own logits"
        )
    expected = torch.zeros(n, D, dtype=torch.long)
    with torch.no_grad():
        for i in ordering:
            expected[:, i] = draw_categories(model(expected)[:, i], u[:, i])
    if not torch.equal(x, expected):
        raise ExerciseFailed(
            f"{name}.sample: the samples follow the model but are not the inverse-CDF draws from the uniforms u "
            f"given: x_i must be the value k with F(k − 1) ≤ u_i < F(k), F the cumulative sum of its softmax, "
            f"drawn with u[:, i] (not fresh random numbers), so that the same u give the package's samples"
        )
    with torch.no_grad():
        free = run_method(name, "sample", model.sample, 50, expected=_expected(name))
    if not torch.is_tensor(free) or tuple(free.shape) != (50, D) or free.dtype != torch.long:
        raise ExerciseFailed(
            f"{name}.sample(50), without u, must draw its own uniforms and return (50, {D}) long"
        )
    return p_value


# --- the course's answer -----------------------------------------------------------------------------------------


def check_q2_a(fn):
    """Check q2_a(train_data, test_data, d, dset_id) -> (train_losses, test_losses, distribution), the course's
    contract, on pairs drawn from a small table with the settings of dset_id = 1: a loss per iteration, the test
    loss before training and after each epoch, a d x d table summing to 1 whose NLL per dimension is the last test
    loss, and a loss that training lowers."""
    name = "q2_a"
    exercise, call = prepare(name, fn)
    with isolated():
        d = 5
        data = _pairs(d)
        train, test, _ = check_answer(name, call, d, 1, data, dims=2)
    passed(
        exercise,
        fn,
        f"on {len(data)} pairs (d = {d}) as train and test data: {len(train)} train losses and {len(test)} test "
        f"losses, the first before training; a d x d table summing to 1, whose NLL per dimension is the last test "
        f"loss; the loss went down",
    )


def _pairs(d, n=400):
    """n pairs (x0, x1) with x1 near x0, from a generator of their own: an integer numpy array (n, 2)."""
    x0 = answer_data(d, n)
    x1 = (x0 + np.random.default_rng(1).integers(0, 2, n)) % d
    return np.stack([x0, x1], 1).astype(np.int64)


def _layer_name(l, L):
    return f"{'the inputs' if l == 0 else f'hidden layer {l}'} → {'the outputs' if l == L else f'hidden layer {l + 1}'}"
