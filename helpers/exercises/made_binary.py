"""The checks of notebook 4's exercises: MADE's Bernoulli log-likelihood and its plain sampler."""

import torch
import torch.nn.functional as F

from ..models.made import MADE
from .harness import ExerciseFailed, differs, isolated, needs_gradient, passed, prepare, same, tensor_result


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


def check_sample_plain(fn):
    """Check sample_plain(model, u, mask_id, given, known) -> x (n, D): exact samples in the ordering of the mask."""
    name = "sample_plain"
    exercise, call = prepare(name, fn)
    with isolated():
        # two masks, with orderings [2, 0, 1] and [2, 1, 0]: sampled with mask 1, which a sampler must be told
        model = MADE((3,), 3, [16], ordering="random", num_masks=2, seed=0)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(
                    0, 1.5
                )  # far from uniform, and each dimension strongly dependent on the earlier ones
        model.eval()
        D, d, n, mask_id = model.D, model.d, 20000, 1
        ordering, nothing_known = model.orderings[mask_id].tolist(), [False] * D
        u = torch.rand(n, D)
        with torch.no_grad():
            x = _samples(name, call(model, u, mask_id, None, nothing_known), n, model)
            grid = torch.cartesian_prod(*[torch.arange(d)] * D)  # row-major: row c is the x coded c
            probabilities = model.log_likelihoods(grid, [mask_id])[0].double().exp()
        if (x == x[0]).all():
            raise ExerciseFailed(
                f"{name}: all {n} samples are x = {x[0].tolist()}, whatever the uniforms u: taking "
                f"the most likely category of each dimension (argmax) is not sampling. Draw each from "
                f"its distribution with helpers.models.sampling.draw_categories(logits[:, dim], u[:, dim])"
            )
        counts = torch.bincount((x * d ** torch.arange(D - 1, -1, -1)).sum(1), minlength=d**D).double()
        statistic, dof, p_value = _chi_square(counts, n * probabilities)
        if p_value < 1e-4:
            worst = int(((counts - n * probabilities).abs() / (n * probabilities).sqrt()).argmax())
            with torch.no_grad():
                of_mask_0 = torch.equal(x, exercise.reference(model, u, 0, None, nothing_known))
            fix = (
                f"They are the samples of mask 0 (ordering {model.orderings[0].tolist()}) from the same uniforms: "
                f"your sampler ignores mask_id. Draw in the ordering model.orderings[mask_id], from the logits "
                f"model(x, mask_id)"
                if of_mask_0
                else "Draw the dimensions in the ordering of mask mask_id, model.orderings[mask_id], each from a "
                "forward pass model(x, mask_id) on the dimensions drawn so far"
            )
            raise ExerciseFailed(
                f"{name}: the samples do not follow the model: on a MADE with D = {D}, d = {d} and two masks, with "
                f"mask_id = {mask_id} (ordering {ordering}), {n} samples give chi-square = {statistic:.3g} with {dof} "
                f"degrees of freedom (p = {p_value:.1e}); x = {grid[worst].tolist()} was drawn "
                f"{counts[worst] / n:.3g} of the time against p(x) = {probabilities[worst]:.3g}. {fix}"
            )
        few = u[:200]
        for j in range(model.num_masks):
            with torch.no_grad():
                mine, expected = (
                    call(model, few, j, None, nothing_known),
                    exercise.reference(model, few, j, None, nothing_known),
                )
            if not torch.equal(mine, expected):
                raise ExerciseFailed(
                    f"{name}: the samples follow the model but differ from the package's from the "
                    f"same uniforms u (with mask_id = {j}): draw dimension dim with "
                    f"draw_categories(logits, u[:, dim]) (the value at which the cumulative "
                    f"probability first exceeds u), so that your sampler and MADE.sample's fast one "
                    f"give the same samples from the same u"
                )
        first = ordering[0]
        known = [dim == first for dim in range(D)]
        given = torch.randint(0, d, (200, D))
        with torch.no_grad():
            mine = _samples(name, call(model, few, mask_id, given, known), 200, model)
            expected = exercise.reference(model, few, mask_id, given, known)
        wrong = int((mine[:, first] != given[:, first]).sum())
        if wrong:
            raise ExerciseFailed(
                f"{name}: dimension {first} is known (known[{first}] is True), but x[:, {first}] differs "
                f"from given[:, {first}] in {wrong} of 200 samples: copy the known dimensions from given"
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
        f"{n} samples of mask {mask_id} of a MADE with two orderings ({ordering} for this one) "
        f"follow its distribution (chi-square p = {p_value:.2f}), equal the package's from the same "
        f"uniforms with either mask, and copy known dimensions",
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


def _chi_square(counts, expected):
    """Pearson's statistic, its degrees of freedom and p-value; cells expecting fewer than 5 are pooled."""
    small = expected < 5
    counts = torch.cat([counts[~small], counts[small].sum(0, keepdim=True)]) if small.any() else counts
    expected = (
        torch.cat([expected[~small], expected[small].sum(0, keepdim=True)]) if small.any() else expected
    )
    statistic = float(((counts - expected) ** 2 / expected).sum())
    dof = len(counts) - 1
    return statistic, dof, float(torch.special.gammaincc(torch.tensor(dof / 2), torch.tensor(statistic / 2)))
