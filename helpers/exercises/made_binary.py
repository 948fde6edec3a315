"""The checks of notebook 4's exercises: MADE's Bernoulli log-likelihood, the direct connections' mask, the plain
binary MADE class, its plain sampler and the course's answer q2_b.

As in notebook 3's checks (`made_2d`), a class is judged by what it does, never by its attribute names except
the one the sampler reads by contract (`orderings`, as the package's MADE has it): its logits against the
package's MADE holding the same weights, which pixel each logit reads (changing one input at a time), log p
summing to 1 by enumeration, its initial weights from a torch seed, and moving it with .to(device).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..devices import full_float32_precision
from ..models.made import MADE
from .harness import (
    Exercise,
    ExerciseFailed,
    build_model,
    check_answer,
    check_model_class,
    chi_square,
    differs,
    isolated,
    moves_with_the_model,
    needs_gradient,
    passed,
    prepare,
    run_method,
    same,
    tensor_result,
)


def check_bernoulli_log_prob(fn):
    """Check bernoulli_log_prob(logits, x) -> log p(x_i | x_<i) = x log σ(ℓ) + (1 − x) log σ(−ℓ), elementwise."""
    name = "bernoulli_log_prob"
    exercise, call = prepare(name, fn)
    with isolated():
        logits = (3 * torch.randn(3, 4)).requires_grad_()
        x = torch.randint(0, 2, (3, 4))
        tensor_result(
            name, call(logits, x), logits.shape, "one log-probability per bit, of the logits' shape"
        )
        grid = torch.linspace(-6, 6, 13).requires_grad_()
        ones = tensor_result(
            name, call(grid, torch.ones(13, dtype=torch.long)), grid.shape, "one log-probability per bit"
        )
        zeros = tensor_result(
            name, call(grid, torch.zeros(13, dtype=torch.long)), grid.shape, "one log-probability per bit"
        )
        _common_mistakes(name, grid, ones, zeros)
        total = ones.detach().double().exp() + zeros.detach().double().exp()
        if not torch.allclose(total, torch.ones_like(total), atol=1e-4):
            i = int((total - 1).abs().argmax())
            raise ExerciseFailed(
                f"{name}: p(x = 0) + p(x = 1) = {total[i]:.4f} at logit {grid[i]:.1f}, not 1 (off by "
                f"{total[i] - 1:+.4f}): with p(x = 1) = σ(ℓ), p(x = 0) = 1 − σ(ℓ) = σ(−ℓ)"
            )
        if not differs(ones, F.logsigmoid(-grid), rtol=1e-5).any():  # torch.allclose's tolerances
            raise ExerciseFailed(
                f"{name}: x = 1 gets log σ(−ℓ), the probability of x = 0: the logit is that of x = 1, "
                f"p(x_i = 1 | x_<i) = σ(ℓ_i)"
            )
        same(
            name,
            ones,
            exercise.reference(grid, torch.ones(13, dtype=torch.long)),
            lambda i: f"x = 1 | logit {grid[i]:.1f}",
            "log σ(ℓ)",
        )
        needs_gradient(name, ones, "logits")
        _large_logits(name, call, exercise.reference)
        made = MADE((4,), 2, [8], ordering=[2, 0, 3, 1], bernoulli_log_prob=fn)
        with torch.no_grad():
            for p in made.parameters():
                p.normal_(0, 1)
            total = float(made.probability_table().double().sum())
        if abs(total - 1) > 1e-4:
            raise ExerciseFailed(
                f"{name}: by enumeration, a MADE with D = 4 using your function gives its 16 images "
                f"a total probability of {total:.4f}, not 1"
            )
    passed(
        exercise,
        fn,
        "p(x = 0) + p(x = 1) = 1 with p(x = 1) = σ(ℓ), right with their gradients at logits up to "
        "±100, and a MADE using it gives its 16 images probabilities summing to 1",
    )


def _common_mistakes(name, grid, ones, zeros):
    """A distinct message for σ in place of log σ, p(x) in place of log p(x), −log p(x) and log base 2, judged on
    the values at logits −6..6 for x = 1 (ones) and x = 0 (zeros)."""
    grid = grid.detach().double()
    one, zero = ones.detach().double(), zeros.detach().double()
    log1, log0 = F.logsigmoid(grid), F.logsigmoid(-grid)  # the right values

    def close(got, expected):
        return torch.allclose(got, expected, rtol=1e-4, atol=1e-5)

    where = "at logits from −6 to 6"
    if close(one, log1.exp()) and close(zero, log0.exp()):
        raise ExerciseFailed(
            f"{name}: your values are the probabilities p(x) = σ(ℓ) for x = 1 and σ(−ℓ) for x = 0 ({where}, "
            f"p(x = 1) at logit 0 is {float(one[6]):.4f}), not their logarithms log p(x): the function returns "
            f"p(x) instead of log p(x). Take the log in log space, from the logits, without forming σ(ℓ)"
        )
    for bit, got, sigma in ((1, one, torch.sigmoid(grid)), (0, zero, torch.sigmoid(-grid))):
        if close(got, sigma):
            sign = "" if bit else "−"
            raise ExerciseFailed(
                f"{name}: for x = {bit} your value is σ({sign}ℓ) ({where}: {float(got[6]):.4f} at logit 0), a "
                f"probability: σ instead of log σ. The term of x = {bit} is log σ({sign}ℓ), computed from the "
                f"logit without forming σ"
            )
    if close(one, -log1) and close(zero, -log0):
        raise ExerciseFailed(
            f"{name}: your values are positive ({float(one[6]):.4f} at logit 0 for x = 1), the negatives of "
            f"log p(x): a missing minus sign. log σ(ℓ) = −log(1 + e^(−ℓ)) is ≤ 0; the binary cross-entropy is "
            f"−log p(x), the loss, not the log-likelihood asked for"
        )
    if close(one, log1 / math.log(2)) and close(zero, log0 / math.log(2)):
        raise ExerciseFailed(
            f"{name}: your values are log p(x) divided by log 2 ({where}: {float(one[6]):.4f} at logit 0 for "
            f"x = 1, should be {float(log1[6]):.4f}): log base 2, in bits. Use the natural logarithm: every loss "
            f"here is in nats"
        )


def _large_logits(name, call, reference):
    """Values and gradients at logits where σ(ℓ) rounds to 0 or 1 in float32 (|ℓ| ≳ 17) and at a moderate one."""
    large = torch.tensor([-100.0, -40.0, -17.0, -5.0, 5.0, 17.0, 40.0, 100.0])
    calls = []
    for bit in (1, 0):
        logits, bits = large.clone().requires_grad_(), torch.full(large.shape, bit)
        log_p = tensor_result(name, call(logits, bits), large.shape, "one log-probability per bit")
        calls.append((bit, logits, log_p))
        expected = reference(large, bits)
        bad = differs(log_p, expected)
        if bad.any():
            i = int(bad.nonzero()[0])
            value = float(log_p.detach()[i])
            cause = (
                "−100 is the floor of F.binary_cross_entropy, which clamps its logs there; from σ(ℓ) it cannot do "
                "better, as σ(ℓ) rounds to 0 or 1 in float32 (σ(17) = 1.0). Work from the logits: "
                "−F.binary_cross_entropy_with_logits(logits, x) or F.logsigmoid"
                if value == -100
                else "σ(ℓ) rounds to 0 or 1 in float32 beyond |ℓ| ≈ 17 (σ(17) = 1.0), so compute log σ(ℓ) without "
                "forming σ(ℓ): F.logsigmoid(ℓ) for x = 1 and log(1 − σ(ℓ)) = F.logsigmoid(−ℓ) for x = 0 (and "
                "0 · (−inf) is nan)"
            )
            raise ExerciseFailed(
                f"{name}: log p(x = {bit}) at logit {large[i]:.0f} is {value:.6g}, should be "
                f"{float(expected[i]):.6g}: {cause}"
            )
    for bit, logits, log_p in calls:  # the values are right: their gradients
        grad = torch.autograd.grad(log_p.sum(), logits, allow_unused=True)[0]
        expected_grad = bit - torch.sigmoid(large)  # d/dℓ of x log σ(ℓ) + (1 − x) log σ(−ℓ)
        bad = torch.ones_like(large, dtype=torch.bool) if grad is None else differs(grad, expected_grad)
        if bad.any():
            i = int(bad.nonzero()[0])
            got = 0.0 if grad is None else float(grad[i])
            raise ExerciseFailed(
                f"{name}: log p(x = {bit}) is right at logit {large[i]:.0f}, but its gradient there "
                f"is {got:.4g}, should be x − σ(ℓ) = {float(expected_grad[i]):.4g}: training would "
                f"get a wrong signal from confident logits. Compute from the logits with F.logsigmoid, "
                f"without clamping or detaching, nor a torch.where whose unused branch overflows (its "
                f"nan gradient leaks through)"
            )


RULE = (
    "the inverse-CDF rule, one for every d: category k when F(k − 1) ≤ u < F(k), so category 0 gets the low "
    "uniforms; for a bit, x = 1 exactly when u ≥ p(x = 0) = σ(−ℓ)"
)


def sampler_model(seed=1):
    """The binary MADE the sampler check runs on: D = 4, d = 2, two masks with different random orderings,
    weights far from uniform (each bit strongly dependent on the earlier ones). torch's generator is left alone."""
    model = MADE((4,), 2, [16], ordering="random", num_masks=2, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(1.5 * torch.randn(p.shape, generator=generator))
    return model.eval()


def check_sample_plain(fn):
    """Check sample_plain(model, u, mask_id, given, known) -> x (n, D) on a binary MADE (d = 2) with two masks:
    samples following the model in the ordering of the mask given, each bit drawn from its logit and its uniform
    by the inverse-CDF rule (x = 1 exactly when u ≥ σ(−ℓ)), known bits copied."""
    name = "sample_plain"
    exercise, call = prepare(name, fn)
    with isolated():
        model = sampler_model()
        D, n, mask_id = model.D, 20000, 1  # sampled with mask 1, which a sampler must be told
        ordering, nothing_known = model.orderings[mask_id].tolist(), [False] * D
        u = torch.rand(n, D)
        with torch.no_grad():
            x = _samples(name, call(model, u, mask_id, None, nothing_known), n, model)
            grid = torch.cartesian_prod(*[torch.arange(2)] * D)  # row-major: row c is the x coded c
            probabilities = model.log_likelihoods(grid, [mask_id])[0].double().exp()
        if (x == x[0]).all():
            raise ExerciseFailed(
                f"{name}: all {n} samples are x = {x[0].tolist()}, whatever the uniforms u: taking the more "
                f"likely value of each bit (a logit above 0 gives 1) is not sampling. Draw each bit from its "
                f"Bernoulli with its uniform, by {RULE}"
            )
        counts = torch.bincount((x * 2 ** torch.arange(D - 1, -1, -1)).sum(1), minlength=2**D).double()
        statistic, dof, p_value = chi_square(counts, n * probabilities)
        if p_value < 1e-4:
            worst = int(((counts - n * probabilities).abs() / (n * probabilities).sqrt()).argmax())
            with torch.no_grad():
                of_mask_0 = torch.equal(x, exercise.reference(model, u, 0, None, nothing_known))
            fix = (
                f"They are the samples of mask 0 (ordering {model.orderings[0].tolist()}) from the same uniforms: "
                f"your sampler ignores mask_id. Draw in the ordering model.orderings[mask_id], from the logits "
                f"model(x, mask_id)"
                if of_mask_0
                else "Draw the bits in the ordering of mask mask_id, model.orderings[mask_id], each from a "
                "forward pass model(x, mask_id) on the bits drawn so far, x = 1 with probability σ(ℓ)"
            )
            raise ExerciseFailed(
                f"{name}: the samples do not follow the model: on a binary MADE with D = {D} and two masks, with "
                f"mask_id = {mask_id} (ordering {ordering}), {n} samples give chi-square = {statistic:.3g} with {dof} "
                f"degrees of freedom (p = {p_value:.1e}); x = {grid[worst].tolist()} was drawn "
                f"{counts[worst] / n:.3g} of the time against p(x) = {probabilities[worst]:.3g}. {fix}"
            )
        few = u[:2000]
        for j in range(model.num_masks):
            with torch.no_grad():
                mine = call(model, few, j, None, nothing_known)
                expected = exercise.reference(model, few, j, None, nothing_known)
                other_rule = exercise.reference(model, 1 - few, j, None, nothing_known)  # x = 1 when u < σ(ℓ)
            if not torch.equal(mine, expected):
                opposite = float((mine == other_rule).all(1).double().mean()) > 0.99
                raise ExerciseFailed(
                    f"{name}: the samples follow the model but are not the draws the uniforms u give (with "
                    f"mask_id = {j}): "
                    + (
                        "yours set a bit to 1 when u < σ(ℓ), giving x = 1 the low uniforms, the opposite rule. "
                        if opposite
                        else "draw dimension dim with u[:, dim] (not fresh random numbers). "
                    )
                    + f"Use {RULE}, so that your sampler and MADE.sample's fast one give the same samples from "
                    f"the same u"
                )
        first = ordering[0]
        known = [dim == first for dim in range(D)]
        given = torch.randint(0, 2, (2000, D))
        with torch.no_grad():
            mine = _samples(name, call(model, few, mask_id, given, known), 2000, model)
            expected = exercise.reference(model, few, mask_id, given, known)
        wrong = int((mine[:, first] != given[:, first]).sum())
        if wrong:
            raise ExerciseFailed(
                f"{name}: dimension {first} is known (known[{first}] is True), but x[:, {first}] differs "
                f"from given[:, {first}] in {wrong} of 2000 samples: copy the known dimensions from given"
            )
        if not torch.equal(mine, expected):
            raise ExerciseFailed(
                f"{name}: with dimension {first} known, the other dimensions differ from the package's "
                f"samples from the same uniforms: put the known value into x before the forward passes "
                f"of the later dimensions, so that they are drawn given it"
            )
    passed(
        exercise,
        fn,
        f"{n} samples of mask {mask_id} of a binary MADE with two orderings ({ordering} for this one) "
        f"follow its distribution (chi-square p = {p_value:.2f}), are the inverse-CDF draws of the uniforms given "
        f"(x = 1 when u ≥ σ(−ℓ)) with either mask, and copy known dimensions",
    )


def _samples(name, x, n, model):
    if not torch.is_tensor(x) or tuple(x.shape) != (n, model.D) or x.dtype != torch.long:
        got = f"{x.dtype} tensor of shape {tuple(x.shape)}" if torch.is_tensor(x) else type(x).__name__
        raise ExerciseFailed(f"{name} must return x, a long tensor (n, D) = ({n}, {model.D}), got a {got}")
    if int(x.min()) < 0 or int(x.max()) > model.d - 1:
        raise ExerciseFailed(
            f"{name} must return categories in [0, d − 1] = [0, {model.d - 1}], got values in "
            f"[{int(x.min())}, {int(x.max())}]"
        )
    return x


# --- direct connections ------------------------------------------------------------------------------------------


def check_direct_mask(fn):
    """Check direct_mask(ordering) -> the direct path's 0/1 mask (D, D): [i, j] = 1 exactly when pixel j comes
    strictly before pixel i in the ordering (rows: the outputs, columns: the inputs)."""
    name = "direct_mask"
    exercise, call = prepare(name, fn)
    with isolated():
        cases = [torch.tensor([2, 0, 3, 1, 5, 4]), torch.arange(4), torch.randperm(7)]
        for ordering in cases:
            D = len(ordering)
            out = call(ordering.clone())
            if not torch.is_tensor(out) or tuple(out.shape) != (D, D):
                got = f"shape {tuple(out.shape)}" if torch.is_tensor(out) else f"a {type(out).__name__}"
                raise ExerciseFailed(
                    f"{name} must return a tensor (D, D) = ({D}, {D}), one row per output, got {got}"
                )
            if not ((out == 0) | (out == 1)).all():
                raise ExerciseFailed(
                    f"{name} must return 0/1 values (keep or drop a weight), got {out.unique().tolist()}"
                )
            mine, expected = out.to(torch.uint8), exercise.reference(ordering)
            if torch.equal(mine, expected):
                continue
            position = ordering.argsort()
            where = f"for the ordering {ordering.tolist()} (pixel i comes at position {position.tolist()}[i])"
            if mine.diagonal().any():
                i = int(mine.diagonal().nonzero()[0])
                raise ExerciseFailed(
                    f"{name}: {where}, [{i}, {i}] is 1: logit {i} would read its own pixel and p(x) would not sum to "
                    f"1. The comparison must be strict, like the output layer's rule m0[i] > m0[j]"
                )
            if torch.equal(mine, expected.T):
                raise ExerciseFailed(
                    f"{name}: {where}, your mask is the transpose of the right one: rows are the outputs (logit i), "
                    f"columns the inputs (pixel j), and [i, j] = 1 when j comes before i"
                )
            if torch.equal(mine, torch.ones(D, D, dtype=torch.uint8).tril(-1)):
                raise ExerciseFailed(
                    f"{name}: {where}, your mask keeps j < i (the pixels' indices), the natural order's mask: compare "
                    f"the pixels' positions in the ordering, not their indices"
                )
            if torch.equal(mine, (ordering[:, None] > ordering[None, :]).to(torch.uint8)):
                raise ExerciseFailed(
                    f"{name}: {where}, your mask compares the entries of the ordering themselves: ordering[t] is the "
                    f"pixel drawn at position t, not the position of pixel t. The positions are the inverse "
                    f"permutation of the ordering"
                )
            i, j = (mine != expected).nonzero()[0].tolist()
            raise ExerciseFailed(
                f"{name}: {where}, [{i}, {j}] is {int(mine[i, j])}, should be {int(expected[i, j])}: pixel {j} comes "
                f"at position {int(position[j])} and pixel {i} at {int(position[i])}; keep [i, j] exactly when j "
                f"comes strictly before i"
            )
    passed(
        exercise,
        fn,
        "[i, j] = 1 exactly when pixel j comes strictly before pixel i, for the natural order and two "
        "random orderings",
    )


# --- the plain binary MADE ---------------------------------------------------------------------------------------

BINARY_SIGNATURE = "BinaryMADE(D, hidden_sizes, ordering=None, seed=0)"
BINARY_METHODS = (
    "forward(x, mask_id=0) -> logits (B, D); log_prob(x) -> log p(x) (B,); orderings: its ordering as a (1, D) "
    "long tensor"
)


def _binary_exercise():
    return Exercise("BinaryMADE", ("D", "hidden_sizes", "ordering", "seed"), "a model", None)


def _binary_package(D, hidden, ordering, seed):
    return MADE((D,), 2, hidden, ordering=ordering, seed=seed, direct=True)


def _binary_logits(name, model, x):
    out = run_method(name, "forward", model, x, 0, expected=BINARY_METHODS)
    what = "one logit per pixel, the logit of x_i = 1"
    return tensor_result(f"{name}.forward of bits x {tuple(x.shape)} (and mask_id = 0)", out, x.shape, what)


def _binary_log_prob(name, model, x):
    out = run_method(name, "log_prob", model.log_prob, x, expected=BINARY_METHODS)
    what = "log p(x), one per image: the sum over pixels of the Bernoulli log-likelihoods"
    return tensor_result(f"{name}.log_prob of x {tuple(x.shape)}", out, (len(x),), what)


def _pairs_of_parameters(name, model, package):
    mine, theirs = list(model.parameters()), list(package.parameters())
    if [tuple(p.shape) for p in mine] != [tuple(p.shape) for p in theirs]:
        raise ExerciseFailed(
            f"{name}: model.parameters() yields tensors of shapes {[tuple(p.shape) for p in mine]}; the package's "
            f"binary MADE with these sizes has, in the order they are created, a weight (out, in) and a bias (out,) "
            f"per masked layer from the input to the output layer, then the direct path's weight (D, D) without a "
            f"bias: {[tuple(p.shape) for p in theirs]}. Create them in that order (masks as buffers, not "
            f"parameters), so that the same torch seed gives both models the same initial weights"
        )
    return list(zip(mine, theirs))


def _what_each_logit_reads(model, x, D):
    """reads[i, j]: logit i changes when pixel j is flipped, for some of the images x."""
    reads = torch.zeros(D, D, dtype=torch.bool)
    with torch.no_grad(), full_float32_precision():
        base = model(x, 0)
        for j in range(D):
            flipped = x.clone()
            flipped[:, j] = 1 - flipped[:, j]
            reads[:, j] = (model(flipped, 0) - base).abs().amax(0) > 1e-6
    return reads


def check_binary_made(cls):
    """Check the class BinaryMADE(D, hidden_sizes, ordering=None, seed=0) by what it does: one logit per pixel, log p
    with gradients summing to 1 over all 2^D images, each logit reading every pixel before it in the ordering (the
    direct path) and no other, the logits of the package's MADE (direct connections, same ordering and seed)
    holding the same weights, the package's initial weights from the same torch seed, `orderings` for the sampler,
    and a model that moves with .to(device)."""
    name = "BinaryMADE"
    check_model_class(name, cls, BINARY_SIGNATURE, BINARY_METHODS)
    cases = [(5, [12, 12], [3, 0, 4, 1, 2], 1), (4, [8], None, 0), (6, [16, 16], [5, 4, 3, 2, 1, 0], 3)]
    with isolated():
        for D, hidden, ordering, seed in cases:
            torch.manual_seed(11)
            model = build_model(name, cls, BINARY_SIGNATURE, D, hidden, ordering=ordering, seed=seed)
            torch.manual_seed(11)
            package = _binary_package(D, hidden, ordering, seed)
            pairs = _pairs_of_parameters(name, model, package)
            if not all(torch.equal(mine, theirs) for mine, theirs in pairs):
                raise ExerciseFailed(
                    f"{name}: from the same torch seed, its initial weights differ from the package's MADE of the "
                    f"same sizes: create the layers in order, the masked layers from the input, then the direct "
                    f"path, with nn.Linear's own initialization, and draw nothing else from torch's generator (the "
                    f"connectivity numbers come from a generator seeded with seed)"
                )
            expected_ordering = torch.arange(D) if ordering is None else torch.tensor(ordering)
            orderings = getattr(model, "orderings", None)
            if (
                not torch.is_tensor(orderings)
                or orderings.dim() != 2
                or not torch.equal(orderings[0].cpu(), expected_ordering)
            ):
                raise ExerciseFailed(
                    f"{name}: model.orderings must hold its ordering as a (1, D) long tensor "
                    f"({expected_ordering.tolist()} for ordering={ordering}), as the package's MADE does: "
                    f"sample_plain reads model.orderings[mask_id]; got {orderings!r:.80}"
                )
            x = torch.randint(0, 2, (64, D))
            _binary_logits(name, model, x)
            log_p = _binary_log_prob(name, model, x)
            if not log_p.requires_grad:
                raise ExerciseFailed(
                    f"{name}.log_prob carries no gradient to the model's parameters: compute it with torch "
                    f"operations (no .item(), .detach(), numpy or torch.no_grad()), or training cannot change them"
                )
            generator = torch.Generator().manual_seed(seed)
            with torch.no_grad():
                for mine, theirs in pairs:
                    theirs.copy_(0.5 * torch.randn(theirs.shape, generator=generator))
                    mine.copy_(theirs)
            reads = _what_each_logit_reads(model, x, D)
            position = expected_ordering.argsort()
            allowed = position[:, None] > position[None, :]
            if (reads & ~allowed).any():
                i, j = (reads & ~allowed).nonzero()[0].tolist()
                raise ExerciseFailed(
                    f"{name}: with ordering {expected_ordering.tolist()}, logit {i} changes when pixel {j} is flipped, "
                    f"but pixel {j} does not come before pixel {i}"
                    + (": it reads its own pixel" if i == j else "")
                    + ". Every path, the hidden layers' and the direct one, must be masked: each weight multiplied "
                    "by its mask at every forward pass"
                )
            if (allowed & ~reads).any():
                i, j = (allowed & ~reads).nonzero()[0].tolist()
                raise ExerciseFailed(
                    f"{name}: with ordering {expected_ordering.tolist()}, logit {i} does not change when pixel {j} "
                    f"is flipped, though pixel {j} comes before it: with direct connections every logit reads every "
                    f"earlier pixel. Add the direct path (its weight times the direct mask, applied to the input "
                    f"bits) to the output layer's logits"
                )
            with torch.no_grad(), full_float32_precision():
                mine, theirs = _binary_logits(name, model, x), package(x, 0)
            if differs(mine, theirs, rtol=1e-4, atol=1e-4).any():
                raise ExerciseFailed(
                    f"{name}: holding the package's weights (D = {D}, hidden sizes {hidden}, ordering {ordering}, "
                    f"seed {seed}), its logits differ from the package's MADE by up to "
                    f"{float((mine - theirs).abs().max()):.3g}, though each reads the right pixels: the hidden "
                    f"layers' masks must come from the connectivity numbers drawn with a generator seeded with seed, a "
                    f"ReLU must follow every hidden layer and none the output layer, and the direct path adds to the "
                    f"output layer's logits"
                )
            every_x = torch.cartesian_prod(*[torch.arange(2)] * D)
            with torch.no_grad():
                total = float(_binary_log_prob(name, model, every_x).double().exp().sum())
            if abs(total - 1) > 1e-4:
                raise ExerciseFailed(
                    f"{name}: exp(log_prob) over all {len(every_x)} images of D = {D} pixels sums to {total:.4f}, "
                    f"not 1: log p(x) is the sum over pixels of your bernoulli_log_prob of the logits and the bits"
                )
            moves_with_the_model(name, model, x, "forward pass")
    passed(
        _binary_exercise(),
        cls,
        "one logit per pixel; each reads exactly the pixels before it, for orderings [3, 0, 4, 1, 2], natural and "
        "reversed; the package's initial weights from the same torch seed and its logits with the same weights; "
        "log p sums to 1 over every image; it moves with .to(device)",
    )


# --- the course's answer -----------------------------------------------------------------------------------------


def answer_images(n=300, seed=0):
    """n binary 4 x 4 images with a channel axis (n, 4, 4, 1), uint8, each one of two patterns (the top left or the
    bottom right 2 x 2 block inked: a quarter of the pixels) with 5% of its pixels flipped, from a generator of
    their own."""
    rng = np.random.default_rng(seed)
    patterns = np.zeros((2, 4, 4), dtype=np.uint8)
    patterns[0, :2, :2], patterns[1, 2:, 2:] = 1, 1
    images = patterns[rng.integers(0, 2, n)] ^ (rng.random((n, 4, 4)) < 0.05)
    return images.astype(np.uint8)[..., None]


def check_q2_b(fn):
    """Check q2_b(train_data, test_data, image_shape, dset_id) -> (train_losses, test_losses, samples), the course's
    contract, on small binary images with the settings of dset_id = 1: a loss per iteration, the test loss before
    training and after each epoch, a loss that training lowers, and 100 samples (100, H, W, 1) of 0/1 with about
    the data's share of ones."""
    name = "q2_b"
    exercise, call = prepare(name, fn)
    with isolated():
        data = answer_images()
        train, test, samples = check_answer(name, call, 2, 1, data, image_shape=data.shape[1:3])
        share, expected = samples.mean(), data.mean()
        if abs(share - expected) > 0.15:
            raise ExerciseFailed(
                f"{name}: {share:.0%} of the pixels of its 100 samples are 1, against {expected:.0%} of the training "
                f"images': return samples of the trained model, drawn with your sample_plain (1 is ink, as in the data)"
            )
    passed(
        exercise,
        fn,
        f"on {len(data)} binary 4 x 4 images as train and test data: {len(train)} train losses and {len(test)} test "
        f"losses, the first before training; the loss went down; 100 samples of 0/1 with {share:.0%} ones "
        f"(the data: {expected:.0%})",
    )
