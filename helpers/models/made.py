"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al. 2015).

A MADE is an MLP whose weights are masked so that it computes, in one forward pass, all the
conditionals of an autoregressive factorization

    p(x) = prod_i p(x_o(i) | x_o(1), ..., x_o(i-1)),   x in {0, ..., d-1}^D,

for an ordering o of the D dimensions. Masks come from connectivity numbers:

* the input units of the dimension at position r of the ordering (r = 1..D) get number r;
* each hidden unit gets a number m drawn uniformly in [min number of the layer below, D - 1]
  (numbers below that minimum would give units with no inputs, number D a unit no output may use);
* the output block of the dimension at position r gets number r.

A hidden weight from a unit numbered m_in to one numbered m_out is kept iff m_out >= m_in, an
output weight iff m_out > m_in (strict). By induction a hidden unit numbered m sees only the
dimensions at positions <= m, so the output block of position r sees only positions < r: the
first dimension's block is its bias alone, and the network is a valid conditional.

Units are grouped by dimension, in data order (not ordering order). For d = 2 there is one input
unit (the raw bit) and one output logit (Bernoulli) per dimension: half the output layer of a
2-way softmax. For d > 2 dimension i enters one-hot as units i*d .. i*d + d-1 and gets d logits,
so the network output is viewed as (B, D, d) with a softmax over the last axis.

With num_masks > 1 the model trains on several mask sets in turn (order-agnostic training when
ordering="random", connectivity-agnostic otherwise), and can average them as an ensemble.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._checks import as_categories, check_integer


class MaskedLinear(nn.Linear):
    """A linear layer holding a stack of fixed 0/1 masks (num_masks, out, in); one is applied per call.

    Only an elementwise product is added to a plain linear layer. The masks are a buffer, so
    `.to(device)` and `state_dict` carry them.
    """

    def __init__(self, masks, bias=True):
        super().__init__(masks.shape[2], masks.shape[1], bias=bias)
        self.register_buffer("masks", masks)

    def forward(self, x, mask=0):
        return F.linear(x, self.weight * self.masks[mask], self.bias)


class MADE(nn.Module):
    """MADE over x of shape (B, *input_shape) with integer categories in [0, d-1].

    ordering: None (natural order 0..D-1), "random" (a seeded random permutation) or an explicit
        permutation of range(D), dimensions indexed in row-major order of input_shape.
    num_masks: mask sets held by the model. Mask 0 uses `ordering`; masks j >= 1 use a fresh random
        permutation if ordering == "random", else the same ordering. Hidden numbers are redrawn
        for every mask. Everything is seeded by `seed`.
    resample_every: in training mode, `loss` moves to the next mask every this many calls.
    direct: add direct connections from the inputs to the outputs (the paper's "direct input
        connections"): a masked linear term, strict like the output layer, beside the hidden path.
        The model then contains a fully visible sigmoid belief net (for d = 2) as a special case;
        the paper's MNIST results use it.
    """

    def __init__(self, input_shape, d, hidden_sizes, ordering=None, num_masks=1, seed=0, resample_every=1,
                 direct=False):
        super().__init__()
        self.input_shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
        if any(not isinstance(s, int) or s < 1 for s in self.input_shape):
            raise ValueError(f"input_shape must hold positive integers, got {input_shape}")
        d = check_integer(d, "d", 2, "the number of categories")
        self.hidden_sizes = hidden_sizes = tuple(
            check_integer(h, "each hidden size", 1, f"units of a hidden layer, in {hidden_sizes}") for h in hidden_sizes)
        num_masks = check_integer(num_masks, "num_masks", 1, "mask sets held by the model")
        resample_every = check_integer(resample_every, "resample_every", 1, "training steps per mask")
        self.D, self.d, self.num_masks, self.resample_every = math.prod(self.input_shape), d, num_masks, resample_every
        self.units_per_dim = 1 if d == 2 else d   # at the input and at the output
        self.logit_shape = () if d == 2 else (d,)  # one dimension's logits
        self.mask_index, self.steps = 0, 0       # mask used by `loss` in training, and calls so far

        g = torch.Generator().manual_seed(seed)
        first = self._check_ordering(ordering, g)
        orderings = [first] + [torch.randperm(self.D, generator=g) if isinstance(ordering, str) else first
                               for _ in range(num_masks - 1)]
        self.register_buffer("orderings", torch.stack(orderings))
        numbers = [[] for _ in hidden_sizes]
        for _ in range(num_masks):
            low = 1
            for l, h in enumerate(hidden_sizes):
                # max(..., low): with D = 1 the range [1, 0] is empty; such units feed no output anyway
                numbers[l].append(torch.randint(low, max(self.D - 1, low) + 1, (h,), generator=g))
                low = int(numbers[l][-1].min())
        for l, m in enumerate(numbers):
            self.register_buffer(f"numbers{l}", torch.stack(m))

        # keep a weight iff m_out >= m_in, strictly (m_out >= m_in + 1) in the output layer
        per_mask = [self._numbers(j) for j in range(num_masks)]
        self.layers = nn.ModuleList(
            MaskedLinear(torch.stack([m[l + 1][:, None] >= m[l] + (l == len(hidden_sizes)) for m in per_mask]))
            for l in range(len(hidden_sizes) + 1))
        # without hidden layers the output layer already is the direct connection
        self.direct = MaskedLinear(torch.stack([m[-1][:, None] > m[0] for m in per_mask]), bias=False) \
            if direct and hidden_sizes else None

    def _check_ordering(self, ordering, g):
        if ordering is None:
            return torch.arange(self.D)
        if isinstance(ordering, str):
            if ordering != "random":
                raise ValueError(f"ordering must be None, 'random' or a permutation of range({self.D}), got {ordering!r}")
            return torch.randperm(self.D, generator=g)
        o = torch.as_tensor(ordering)
        if (o.dtype.is_floating_point or o.dtype.is_complex or o.dtype == torch.bool or o.shape != (self.D,)
                or not torch.equal(o.sort().values.cpu().long(), torch.arange(self.D))):
            raise ValueError(f"ordering must be a permutation of range({self.D}), got {ordering}")
        return o.cpu().long()

    def _numbers(self, mask):
        """Connectivity numbers of every layer's units for one mask: [inputs, hidden..., outputs]."""
        rank = self.orderings[mask].argsort() + 1   # position (1..D) of each dimension in the ordering
        units = rank.repeat_interleave(self.units_per_dim)   # inputs and output blocks both carry their dimension's rank
        return [units] + [getattr(self, f"numbers{l}")[mask] for l in range(len(self.hidden_sizes))] + [units]

    def _check_count(self, value, name, low):
        """A mask index (low = 0) or a number of masks (low = 1) that this model has."""
        high = self.num_masks - 1 + low
        if not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value}")

    def _flat(self, x, name="x"):
        """Validated categories as a long tensor (B, D) on the model's device."""
        return as_categories(x, self.d, self.input_shape, name).to(self.orderings.device).reshape(-1, self.D)

    def _encode(self, x):
        """Network input for categories x (..., D): the bits themselves (d = 2) or one-hot blocks."""
        dtype = self.layers[0].weight.dtype
        return x.to(dtype) if self.d == 2 else F.one_hot(x, self.d).flatten(-2).to(dtype)

    def network(self, h, mask=0):
        """Logits (B, D) for d = 2 or (B, D, d) from float network inputs h (B, D * units_per_dim), one mask.

        Takes the (relaxed) encoded input rather than categories so it can be differentiated
        with respect to its input, e.g. to check the autoregressive property.
        """
        inputs = h
        for layer in self.layers[:-1]:
            h = F.relu(layer(h, mask))
        out = self.layers[-1](h, mask)
        if self.direct is not None:
            out = out + self.direct(inputs, mask)
        return out.view(h.shape[0], self.D, *self.logit_shape)

    def forward(self, x, mask=None):
        """Logits for categories x under a mask (default: the one `loss` would use now)."""
        mask = (self.mask_index if self.training else 0) if mask is None else mask
        self._check_count(mask, "mask", 0)
        return self.network(self._encode(self._flat(x)), mask)

    def _dim_log_probs(self, x, h, mask):
        """log p(x_i | x before i in mask's ordering), shape (B, D), for flat categories x (B, D)
        and their network input h = self._encode(x) (encoded once by callers looping over masks)."""
        logits = self.network(h, mask)
        if self.d == 2:
            return -F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none")
        return logits.log_softmax(-1).gather(-1, x[..., None]).squeeze(-1)

    def log_prob(self, x, n_masks=1):
        """log p(x) in nats per example, shape (B,), for x of shape (B, *input_shape).

        With n_masks = k > 1: the ensemble log(1/k sum_j p_j(x)) over the first k masks, by a
        logsumexp of the per-mask log-likelihoods. Averaging logits across masks instead would mix
        conditionals of different orderings, which is not a normalized distribution.
        """
        self._check_count(n_masks, "n_masks", 1)
        x = self._flat(x)
        h = self._encode(x)
        lp = torch.stack([self._dim_log_probs(x, h, j).sum(-1) for j in range(n_masks)])
        return lp.logsumexp(0) - math.log(n_masks)

    def loss(self, x):
        """Mean NLL in nats per dimension. Training mode: the current mask, then advance the cycle."""
        mask = 0
        if self.training:
            mask, self.steps = self.mask_index, self.steps + 1
            if self.steps % self.resample_every == 0:
                self.mask_index = (self.mask_index + 1) % self.num_masks
        x = self._flat(x)
        return -self._dim_log_probs(x, self._encode(x), mask).sum(-1).mean() / self.D

    def _categories(self, logits, u):
        """Inverse-CDF draw from one dimension's logits ((n,) or (n, d)) with uniforms u (n,)."""
        if self.d == 2:
            return (u < torch.sigmoid(logits)).long()
        cdf = logits.softmax(-1).cumsum(-1)
        return (cdf < u[:, None]).sum(-1).clamp(max=self.d - 1)   # clamp: rounding can leave cdf[-1] < u

    @torch.no_grad()
    def sample(self, n, mask=0, n_masks=None, given=None, known=None, method="fast", uniforms=None):
        """Draw n samples, a long tensor (n, *input_shape) on the model's device.

        mask: the mask (and so the ordering) to sample with; or n_masks = k to sample the ensemble
            of the first k masks: each sample uses one mask, drawn uniformly (or, when completing,
            in proportion to that mask's probability of the known entries, which makes it the exact
            conditional of the ensemble).
        given, known: completion. `known` is a bool tensor of shape input_shape; known entries are
            copied from `given` (n, *input_shape) and the rest sampled. This is an exact conditional
            sample only if the known dimensions come first in the ordering, so anything else raises
            (to complete images from their top half, use the natural ordering).
        method: "fast" (one forward pass of work, see `_sample_fast`) or "plain" (D forward passes).
        uniforms: optional (n, D) numbers in [0, 1) driving the draws, by data dimension; the two
            methods give the same samples from the same uniforms.
        """
        if method not in ("fast", "plain"):
            raise ValueError(f"method must be 'fast' or 'plain', got {method!r}")
        if n_masks is None:
            self._check_count(mask, "mask", 0)
            masks = [mask]
        elif mask != 0:
            raise ValueError("pass either mask or n_masks, not both")
        else:
            self._check_count(n_masks, "n_masks", 1)
            masks = list(range(n_masks))
        device, dtype = self.orderings.device, self.layers[0].weight.dtype
        if uniforms is None:
            uniforms = torch.rand(n, self.D, device=device, dtype=dtype)
        elif tuple(uniforms.shape) != (n, self.D):
            raise ValueError(f"uniforms must have shape {(n, self.D)}, got {tuple(uniforms.shape)}")
        uniforms = uniforms.to(device, dtype)

        if (given is None) != (known is None):
            raise ValueError("completion needs both `given` and `known`")
        log_w = torch.zeros(n, len(masks), device=device)
        if known is not None:
            known = torch.as_tensor(known, device=device)
            if known.dtype != torch.bool or tuple(known.shape) != self.input_shape:
                raise ValueError(f"known must be a bool tensor of shape {self.input_shape}, "
                                 f"got {known.dtype} of shape {tuple(known.shape)}")
            given = self._flat(given, "given")
            if given.shape[0] != n:
                raise ValueError(f"given must hold n = {n} examples, got {given.shape[0]}")
            known = known.flatten()
            for j in masks:
                in_order = known[self.orderings[j]]
                if (in_order[1:] > in_order[:-1]).any():
                    raise ValueError(
                        f"the known dimensions must come first in the ordering of mask {j}, otherwise copying them "
                        f"is not an exact conditional sample; for top-half completion use the natural ordering")
            # ensemble posterior over masks: p(j | known) ~ p_j(x_known), a prefix of every ordering
            h = self._encode(given)
            log_w = torch.stack([self._dim_log_probs(given, h, j)[:, known].sum(-1) for j in masks], 1)
        choice = torch.multinomial(log_w.softmax(1), 1).squeeze(1)
        known = [False] * self.D if known is None else known.tolist()

        x = torch.empty(n, self.D, dtype=torch.long, device=device)
        sampler = self._sample_fast if method == "fast" else self._sample_plain
        for i, j in enumerate(masks):   # samples grouped by mask
            idx = (choice == i).nonzero().squeeze(1)
            if len(idx):
                x[idx] = sampler(uniforms[idx], j, None if given is None else given[idx], known)
        return x.view(n, *self.input_shape)

    def _sample_plain(self, u, mask, given, known):
        """Reference sampler: one full forward pass per dimension, in the mask's ordering."""
        x = torch.zeros(u.shape, dtype=torch.long, device=u.device)
        for dim in self.orderings[mask].tolist():
            x[:, dim] = given[:, dim] if known[dim] else self._categories(
                self.network(self._encode(x), mask)[:, dim], u[:, dim])
        return x

    def _sample_fast(self, u, mask, given, known):
        """Sampler doing about one forward pass of arithmetic in total.

        A hidden unit numbered m depends only on the dimensions at positions <= m, so its value is
        final once those are sampled, and each unit is computed once. Units of every layer are sorted
        by number, so the units numbered t form a contiguous slice. We keep each hidden layer's
        pre-activations (starting at the bias); with no hidden layer the output reads the inputs
        directly. After sampling the dimension at position t:
          1. its input units (numbered t) add their contribution to the next layer's accumulators;
          2. layer by layer, the units numbered t are now final: apply ReLU and add their
             contribution to the next layer (a matmul over just that slice, into units numbered >= t);
          3. the output block at position t+1 reads only last-layer units numbered <= t, all final.
        For one-hot inputs step 1 is a matmul with a one-hot slice (d columns): d times the work of
        a gather on the first layer only, but the same code as the other layers.
        """
        n, D = u.shape
        perms, starts = [], []
        for m in self._numbers(mask)[:-1]:              # outputs are numbered (and sorted) like inputs
            sorted_m, perm = m.sort(stable=True)
            perms.append(perm)
            # starts[t]: first unit numbered >= t, so units numbered t are [starts[t], starts[t + 1])
            starts.append(torch.searchsorted(sorted_m, torch.arange(D + 2, device=u.device)).tolist())
        rows = perms[1:] + perms[:1]                    # each layer's outputs are the next one's inputs
        ws = [(layer.weight * layer.masks[mask])[r[:, None], c] for layer, r, c in zip(self.layers, rows, perms)]
        w_hidden = [w.T.contiguous() for w in ws[:-1]]                # (in, out): slices of rows are cheap
        w_out = ws[-1].view(D, *self.logit_shape, -1).movedim(-1, 1)  # (D, H, *logit_shape), by position
        b_out = self.layers[-1].bias[rows[-1]].view(D, *self.logit_shape)
        if self.direct is not None:   # inputs -> outputs, both sorted by position like the output layer
            w_direct = (self.direct.weight * self.direct.masks[mask])[perms[0][:, None], perms[0]]
            w_direct = w_direct.view(D, *self.logit_shape, -1).movedim(-1, 1)   # (D, D * units, *logit_shape)
        acts = [u.new_zeros(n, layer.in_features) for layer in self.layers]   # inputs to each layer
        accs = [layer.bias[r].expand(n, -1).clone() for layer, r in zip(self.layers[:-1], rows)]

        x = torch.zeros(n, D, dtype=torch.long, device=u.device)
        for t, dim in enumerate(self.orderings[mask].tolist(), 1):
            if known[dim]:
                x[:, dim] = given[:, dim]
            else:
                e = starts[-1][t]                       # last-layer units numbered < t
                logits = acts[-1][:, :e] @ w_out[t - 1, :e] + b_out[t - 1]
                if self.direct is not None:
                    e0 = starts[0][t]                   # input units numbered < t
                    logits = logits + acts[0][:, :e0] @ w_direct[t - 1, :e0]
                x[:, dim] = self._categories(logits, u[:, dim])
            if t == D:
                break
            acts[0][:, starts[0][t]:starts[0][t + 1]] = self._encode(x[:, dim:dim + 1])
            for l, (w, acc) in enumerate(zip(w_hidden, accs)):
                a, b = starts[l][t], starts[l][t + 1]
                s, e = starts[l + 1][t], starts[l + 1][t + 1]
                if a < b:
                    acc[:, s:].addmm_(acts[l][:, a:b], w[a:b, s:])
                if s < e:
                    acts[l + 1][:, s:e] = F.relu(acc[:, s:e])
        return x
