"""Sampling from a MADE, as functions of a model: one dimension at a time in the ordering of a mask.

`sample` draws from the model's distribution (the mixture of its masks) or completes given entries;
`sample_plain` is the reference sampler, one forward pass per dimension; `sample_fast` gives the same
draws from the same uniforms with about one forward pass of arithmetic in total; `draw_categories` is
the inverse-CDF draw both use. `MADE.sample` calls `sample`.
"""

import torch
import torch.nn.functional as F

from .._checks import check_integer


@torch.no_grad()
def sample(model, n, mask_id=None, n_masks=None, given=None, known=None, method="fast", uniforms=None):
    """Draw n samples, a long tensor (n, *input_shape) on the model's device.

    mask_id: sample with this one mask (and its ordering). Otherwise the mixture of the first
        n_masks masks (default: all): each sample uses one mask, drawn uniformly or, when
        completing, in proportion to that mask's probability of the known entries, which makes it
        the exact conditional of the mixture.
    given, known: completion. `known` is a bool tensor of shape input_shape; known entries are
        copied from `given` (n, *input_shape) and the rest sampled. This is an exact conditional
        sample only if the known dimensions come first in the ordering, so anything else raises
        (to complete images from their top half, use the natural ordering).
    method: "fast" (one forward pass of work, see `sample_fast`) or "plain" (D forward passes, `sample_plain`).
        To run a sampler of your own, call it: `my_sampler(model, u, mask_id, given, known)`.
    uniforms: optional tensor (n, D) of numbers in [0, 1) driving the draws, by data dimension;
        the two methods give the same samples from the same uniforms.
    """
    n = check_integer(n, "n", 1, "the number of samples")
    if mask_id is not None and n_masks is not None:
        raise ValueError("pass either mask_id (one mask) or n_masks (a mixture), not both")
    mask_ids = [model.check_mask_id(mask_id)] if mask_id is not None else range(model.check_n_masks(n_masks))
    samplers = {"fast": sample_fast, "plain": sample_plain}
    if isinstance(method, str) and method in samplers:
        sampler = samplers[method]
    elif callable(method):
        raise ValueError(
            f"method must be 'fast' or 'plain', got the function {getattr(method, '__name__', method)}: "
            f"call a sampler of your own directly, as sampler(model, u, mask_id, given, known)"
        )
    else:
        raise ValueError(f"method must be 'fast' or 'plain', got {method!r}")
    uniforms = check_uniforms(model, uniforms, n)
    if given is None and known is None:
        log_weights = torch.zeros(n, len(mask_ids), device=model.device)  # masks drawn uniformly
    else:
        given, known = check_completion(model, n, given, known, mask_ids)
        log_weights = model.log_likelihoods(given, mask_ids, dims=known).T  # p(j | known) ~ p_j(x_known)
    choice = torch.multinomial(log_weights.softmax(1), 1).squeeze(1)
    known = [False] * model.D if known is None else known.tolist()
    x = torch.empty(n, model.D, dtype=torch.long, device=model.device)
    for i, j in enumerate(mask_ids):  # samples grouped by mask
        rows = (choice == i).nonzero().squeeze(1)
        if len(rows):
            x[rows] = sampler(model, uniforms[rows], j, None if given is None else given[rows], known)
    return x.view(n, *model.input_shape)


def check_uniforms(model, uniforms, n):
    """Uniforms (n, D) in [0, 1) on the model's device, drawn when None, in at least float32."""
    if uniforms is None:
        return torch.rand(n, model.D, device=model.device, dtype=draw_dtype(model.dtype))
    if not torch.is_tensor(uniforms) or not uniforms.dtype.is_floating_point:
        raise ValueError(
            f"uniforms must be a floating-point tensor of shape {(n, model.D)}, got {uniforms!r:.60}"
        )
    if tuple(uniforms.shape) != (n, model.D):
        raise ValueError(f"uniforms must have shape {(n, model.D)}, got {tuple(uniforms.shape)}")
    if not ((uniforms >= 0) & (uniforms < 1)).all():  # NaN fails both comparisons
        raise ValueError("uniforms must lie in [0, 1) (no NaN): draw them with torch.rand")
    return uniforms.to(model.device, draw_dtype(uniforms.dtype))  # never rounded to the model's dtype


def check_completion(model, n, given, known, mask_ids):
    """Validated given (n, D) and known (D,); the known dimensions must come first in every ordering used."""
    if given is None or known is None:
        raise ValueError("completion needs both `given` and `known`")
    known = torch.as_tensor(known, device=model.device)
    if known.dtype != torch.bool or tuple(known.shape) != model.input_shape:
        raise ValueError(
            f"known must be a bool tensor of shape {model.input_shape}, "
            f"got {known.dtype} of shape {tuple(known.shape)}"
        )
    given = model.flat_input(given, "given")
    if given.shape[0] != n:
        raise ValueError(f"given must hold n = {n} examples, got {given.shape[0]}")
    known = known.flatten()
    for j in mask_ids:
        in_order = known[model.orderings[j]]
        if (in_order[1:] > in_order[:-1]).any():  # a known dimension after an unknown one
            raise ValueError(
                f"the known dimensions must come first in the ordering of mask {j}, otherwise copying them "
                f"is not an exact conditional sample; for top-half completion use the natural ordering"
            )
    return given, known


def draw_dtype(dtype):
    """The dtype of the draws: at least float32. In bfloat16 (8 bits of precision) uniforms are multiples
    of 2^-8 and a small probability p would be compared with 0 or 2^-8, not p."""
    return torch.promote_types(dtype, torch.float32)


def draw_categories(logits, u):
    """Inverse-CDF draw from one dimension's logits with uniforms u (n,): logits (n,) of a bit (d = 2, the logit
    of x = 1) or (n, d) of d categories.

    One rule for every d: category k is drawn when cdf[k - 1] <= u < cdf[k], so category 0 gets the low
    uniforms and u = 0 never picks a category whose probability is 0. For a bit, cdf[0] = p(x = 0) = σ(−logit):
    x = 1 exactly when u >= σ(−logit). Probabilities and uniforms are compared in the more precise of their
    dtypes (at least float32), so that neither is rounded to the other's: a float64 uniform just below 1 would
    round to 1.0 in float32.
    """
    dtype = torch.promote_types(draw_dtype(logits.dtype), u.dtype)
    logits, u = logits.to(dtype), u.to(dtype)
    if logits.dim() == u.dim():  # one logit per example: a bit
        return (u >= torch.sigmoid(-logits)).long()  # cdf[0] = p(x = 0) <= u
    cdf = logits.softmax(-1).cumsum(-1)
    # clamp: rounding can leave cdf[-1] <= u
    return (cdf <= u[:, None]).sum(-1).clamp(max=logits.shape[-1] - 1)


def sample_plain(model, u, mask_id, given, known):
    """Reference sampler: one full forward pass per dimension, in the mask's ordering."""
    x = torch.zeros(u.shape, dtype=torch.long, device=u.device)
    for dim in model.orderings[mask_id].tolist():
        x[:, dim] = (
            given[:, dim]
            if known[dim]
            else draw_categories(model.network(model.encode(x), mask_id)[:, dim], u[:, dim])
        )
    return x


def sample_fast(model, u, mask_id, given, known):
    """Sampler doing about one forward pass of arithmetic in total; the same draws as `sample_plain`.

    A hidden unit numbered m depends only on the dimensions at positions <= m, so its value is
    final once those are sampled, and each unit is computed once. Units of every layer are sorted
    by number, so the units numbered t form a contiguous slice. Each hidden layer keeps its
    pre-activations (starting at the bias). After sampling the dimension at position t:
      1. its input units (numbered t) are set;
      2. layer by layer, the units numbered t are final: they add their contribution to the next
         layer's pre-activations (a matmul over just that slice), whose units numbered t are then
         final in turn (ReLU);
      3. the output of position t + 1 reads only last-layer units numbered <= t, all final.
    """
    n, D = u.shape
    sorted_numbers, perms = zip(*(m.sort(stable=True) for m in model.unit_numbers(mask_id)))
    # first[l][t]: (sorted) index of layer l's first unit numbered >= t, so its units numbered t are
    # first[l][t]:first[l][t + 1] and those numbered < t are :first[l][t]
    first = [
        torch.searchsorted(m, torch.arange(D + 2, device=u.device)).tolist() for m in sorted_numbers[:-1]
    ]
    masked = [
        (layer.weight * layer.masks[mask_id])[rows[:, None], cols]
        for layer, rows, cols in zip(model.layers, perms[1:], perms[:-1])
    ]
    w_hidden = [w.T.contiguous() for w in masked[:-1]]  # (in, out): row slices are cheap
    w_out = masked[-1].view(D, *model.logit_shape, -1).movedim(-1, 1)  # (D, H, *logit_shape), by position
    b_out = model.layers[-1].bias[perms[-1]].view(D, *model.logit_shape)
    w_direct = None
    if model.direct is not None:  # inputs -> outputs, by position
        w_direct = (model.direct.weight * model.direct.masks[mask_id])[perms[-1][:, None], perms[0]]
        w_direct = w_direct.view(D, *model.logit_shape, -1).movedim(-1, 1)  # (D, inputs, *logit_shape)
    acts = [
        torch.zeros(n, layer.in_features, dtype=model.dtype, device=u.device)  # each layer's input, sorted
        for layer in model.layers
    ]
    pre = [layer.bias[rows].expand(n, -1).clone() for layer, rows in zip(model.layers[:-1], perms[1:])]

    x = torch.zeros(n, D, dtype=torch.long, device=u.device)
    for t, dim in enumerate(model.orderings[mask_id].tolist(), 1):  # dim is at position t
        if known[dim]:
            x[:, dim] = given[:, dim]
        else:
            final = first[-1][t]  # last-layer units numbered < t
            logits = acts[-1][:, :final] @ w_out[t - 1, :final] + b_out[t - 1]
            if w_direct is not None:
                final_inputs = first[0][t]  # input units numbered < t
                logits = logits + acts[0][:, :final_inputs] @ w_direct[t - 1, :final_inputs]
            x[:, dim] = draw_categories(logits, u[:, dim])
        if t == D:
            break
        acts[0][:, first[0][t] : first[0][t + 1]] = model.encode(x[:, dim : dim + 1])
        for l, (w, z) in enumerate(zip(w_hidden, pre)):
            now_final = slice(first[l][t], first[l][t + 1])  # layer l's units numbered t
            later = first[l + 1][t]  # the next layer's units numbered >= t
            if now_final.start < now_final.stop:
                z[:, later:].addmm_(acts[l][:, now_final], w[now_final, later:])
            next_final = slice(later, first[l + 1][t + 1])  # the next layer's units numbered t
            if next_final.start < next_final.stop:
                acts[l + 1][:, next_final] = F.relu(z[:, next_final])
    return x
