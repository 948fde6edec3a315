"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al. 2015).

A MADE is an MLP whose weights are multiplied by fixed 0/1 masks, so that one forward pass computes
every conditional of an autoregressive factorization

    p(x) = prod_r p(x_o(r) | x_o(1), ..., x_o(r-1)),   x in {0, ..., d-1}^D,

for an ordering o of the D dimensions. The masks come from connectivity numbers, in two small pure
functions: `connectivity_numbers` numbers the units, `masks_from_numbers` turns numbers into masks.
A hidden unit numbered m sees only the dimensions at positions 1..m of the ordering, and the output
of the dimension at position r reads only units numbered below r.

Units. d = 2: one input unit per dimension (the bit) and one output logit (a Bernoulli). d > 2: d
logits per dimension (a softmax) and, at the input, a one-hot block of d units (`encoding="one-hot"`,
the course's model) or a thermometer code of d - 1 units [x >= 1, ..., x >= d - 1]
(`encoding="ordinal"`), in which neighbouring values share all but one unit. Every unit of a
dimension carries that dimension's number, so the encoding leaves the autoregressive structure as
it is. Units are grouped by dimension in data order (not ordering order).

With num_masks > 1 the model holds several mask sets and trains on them in turn, one per step
(connectivity-agnostic training; order-agnostic too with ordering="random"). As a distribution it
is the uniform mixture of its masks: `log_prob` and `sample` use all of them unless told otherwise.
"""
import functools
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import as_categories, check_examples, check_integer, check_seed

ENCODINGS = ("one-hot", "ordinal")
INITS = ("pytorch", "orthogonal")


def as_permutation(ordering, D=None):
    """`ordering` as a long CPU tensor, or a ValueError unless it is a permutation of range(D).

    D defaults to the ordering's length. Accepts lists, numpy arrays and tensors on any device, of
    integers; bools are refused even inside a list, where torch and numpy would read True as 1.
    """
    expected = f"range({D})" if D is not None else "range(D), one integer per dimension"
    try:
        if torch.is_tensor(ordering):
            o = ordering.detach().cpu()
        elif isinstance(ordering, (str, bytes)) or any(isinstance(v, (bool, np.bool_)) for v in ordering):
            raise TypeError
        else:
            o = torch.as_tensor(np.array(ordering))
    except (TypeError, ValueError, RuntimeError):   # not a sequence, or nothing numeric
        o = None
    if (o is None or o.dtype.is_floating_point or o.dtype.is_complex or o.dtype == torch.bool or o.dim() != 1
            or len(o) == 0 or (D is not None and len(o) != D)
            or not torch.equal(o.sort().values.long(), torch.arange(len(o)))):
        raise ValueError(f"ordering must be a permutation of {expected}, got {ordering!r:.200}")
    return o.long()


def connectivity_numbers(ordering, hidden_sizes, generator=None):
    """The connectivity numbers [m0, m1, ..., mL] of one mask, as long tensors on the ordering's device.

    m0[i] is the position (1..D) of data dimension i in `ordering`, a permutation of range(D). Hidden
    layer l's numbers m_l are drawn uniformly in [min(m_{l-1}), D - 1]: a unit numbered below that
    minimum would get no input, and one numbered D could feed no output. They are drawn on the CPU,
    with `generator` (a CPU generator), whatever the ordering's device.
    """
    device = ordering.device if torch.is_tensor(ordering) else torch.device("cpu")
    ordering = as_permutation(ordering)
    numbers = [ordering.argsort() + 1]
    for size in hidden_sizes:
        low = int(numbers[-1].min())
        if low > len(ordering) - 1:
            raise ValueError(f"with D = {len(ordering)} dimension(s) no hidden unit can feed an output: "
                             f"use no hidden layers")
        numbers.append(torch.randint(low, len(ordering), (size,), generator=generator))
    return [m.to(device) for m in numbers]


def masks_from_numbers(numbers):
    """The L + 1 masks of connectivity numbers [m0, m1, ..., mL]: 0/1 tensors of shape (out, in).

    Hidden layer l keeps the weight from unit j below to its unit k when m_l[k] >= m_{l-1}[j]. The
    outputs are numbered like the inputs (m0), and the output layer keeps a weight only when
    m0[i] > m_L[j], strictly: no output may see its own dimension.
    """
    _check_numbers(numbers)
    masks = [m_out[:, None] >= m_in[None, :] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    masks.append(numbers[0][:, None] > numbers[-1][None, :])
    return [m.to(torch.uint8) for m in masks]


def _check_numbers(numbers):
    if len(numbers) == 0:
        raise ValueError("numbers must hold at least the inputs' numbers m0")
    D = len(numbers[0])
    for l, m in enumerate(numbers):
        layer = "layer 0 (the inputs)" if l == 0 else f"hidden layer {l}"
        if not torch.is_tensor(m) or m.dim() != 1 or m.dtype.is_floating_point or len(m) == 0:
            raise ValueError(f"{layer}: numbers must be a non-empty 1-D integer tensor, got {m!r}")
        if int(m.min()) < 1 or int(m.max()) > D:
            raise ValueError(f"{layer}: numbers must lie in [1, D] = [1, {D}], got [{int(m.min())}, {int(m.max())}]")
        if l > 0 and D > 1 and int(m.min()) > D - 1:
            raise ValueError(f"{layer}: all its numbers are D = {D} or more, so no output can read it; "
                             f"hidden numbers belong in [1, D - 1]")
    if not torch.equal(numbers[0].sort().values.cpu(), torch.arange(1, D + 1)):
        raise ValueError(f"layer 0 (the inputs) must number the {D} dimensions 1..{D}, each once "
                         f"(their positions in the ordering), got {numbers[0].tolist()}")


def bernoulli_log_prob(logits, x):
    """log p(x_i | x_<i) = x_i log σ(ℓ_i) + (1 − x_i) log σ(−ℓ_i) of every bit x (long, any shape) from its
    logit ℓ (same shape), computed without forming σ(ℓ), so it stays finite for any logit."""
    return -F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none")


def reachability(masks):
    """Which input reaches which output through masks [(h1, in), ..., (out, hL)]: a bool (out, in) matrix.

    The product of the 0/1 matrices counts the paths; a path exists even where the weights or a
    ReLU happen to cancel it, so this checks the masks for every input, not one.
    """
    paths = masks[0].float()
    for m in masks[1:]:
        paths = (m.float() @ paths > 0).float()
    return paths > 0


class MaskedLinear(nn.Linear):
    """A linear layer holding a stack of fixed 0/1 masks (num_masks, out, in); one is applied per call.

    Only an elementwise product is added to a plain linear layer. The masks are a buffer, so
    `.to(device)` and `state_dict` carry them.
    """

    def __init__(self, masks, bias=True):
        super().__init__(masks.shape[2], masks.shape[1], bias=bias)
        self.register_buffer("masks", masks)

    def forward(self, x, mask_id=0):
        return F.linear(x, self.weight * self.masks[mask_id], self.bias)


class MADE(nn.Module):
    """MADE over x of shape (B, *input_shape) with integer categories in [0, d-1].

    hidden_sizes: a list of hidden layer widths (may be empty).
    ordering: None (natural order 0..D-1), "random" (a seeded random permutation) or an explicit
        permutation of range(D), dimensions indexed in row-major order of input_shape.
    num_masks: mask sets held by the model. Mask 0 uses `ordering`; masks 1.. use fresh random
        permutations if ordering == "random", else the same ordering. Hidden numbers are drawn anew
        for every mask.
    seed: fixes the random orderings and the hidden numbers, hence every mask, and nothing else. The
        initial weights come from torch's global generator, like any nn.Linear's: seed that too
        (`helpers.training.seed`) to repeat a run.
    resample_every: in training mode, `loss` moves to the next mask every this many steps.
    direct: direct connections from the inputs to the outputs (the paper's MNIST models): a masked
        linear path, strict like the output layer, added to the hidden path's logits.
    encoding: for d > 2, "one-hot" (d input units per dimension) or "ordinal" (d - 1 threshold units).
    init: the initial weights: "pytorch" (nn.Linear's own) or "orthogonal" (the MADE authors' released
        code: each weight matrix a slice of a random orthogonal matrix, before masking, and zero biases).

    The masks follow from the orderings and numbers, so `state_dict` leaves them out (they take
    num_masks times the weights' size, gigabytes for wide models) and keeps those small buffers;
    loading a state rebuilds the masks from its orderings and numbers. States that hold the masks
    (`layers.N.masks`, `direct.masks`, as saved before) still load: their masks must equal the rebuilt ones.
    connectivity_numbers, masks_from_numbers, bernoulli_log_prob: functions with the signatures of this
        module's to use in their place (the exercise notebooks plug the learner's in).
    """

    def __init__(self, input_shape, d, hidden_sizes, ordering=None, num_masks=1, seed=0, resample_every=1,
                 direct=False, encoding="one-hot", init="pytorch", connectivity_numbers=connectivity_numbers,
                 masks_from_numbers=masks_from_numbers, bernoulli_log_prob=bernoulli_log_prob):
        super().__init__()
        self.bernoulli_log_prob, self.masks_from_numbers = bernoulli_log_prob, masks_from_numbers
        shape = (input_shape,) if not isinstance(input_shape, (tuple, list, torch.Size)) else input_shape
        self.input_shape = tuple(check_integer(s, "each size in input_shape", 1, f"the shape {input_shape} of "
                                               f"one example") for s in shape)
        self.D = math.prod(self.input_shape)
        self.d = check_integer(d, "d", 2, "the number of categories")
        if not isinstance(hidden_sizes, (list, tuple)):
            raise ValueError(f"hidden_sizes must be a list of hidden layer widths, such as [512, 512] (or [] for "
                             f"none), got {hidden_sizes!r}")
        self.hidden_sizes = tuple(check_integer(h, "each hidden size", 1, f"units of a hidden layer, in {hidden_sizes}")
                                  for h in hidden_sizes)
        self.num_masks = check_integer(num_masks, "num_masks", 1, "mask sets held by the model")
        self.resample_every = check_integer(resample_every, "resample_every", 1, "training steps per mask")
        if encoding not in ENCODINGS or (encoding == "ordinal" and self.d == 2):
            raise ValueError(f"encoding must be 'one-hot' or, for d > 2, 'ordinal', got {encoding!r} with d = {self.d} "
                             f"(with d = 2 the input is one bit, its own code in both)")
        self.encoding = encoding
        self.in_units = 1 if self.d == 2 else self.d if encoding == "one-hot" else self.d - 1   # per dimension
        self.out_units = 1 if self.d == 2 else self.d   # logits per dimension
        self.logit_shape = () if self.d == 2 else (self.d,)   # one dimension's output
        self.steps = 0   # training steps taken by `loss`; they fix the current mask (`mask_id`)
        if not isinstance(direct, (bool, np.bool_)):
            raise ValueError(f"direct must be True or False (direct connections from the inputs to the outputs), "
                             f"got {direct!r}")

        g = torch.Generator().manual_seed(check_seed(seed))
        first = self._check_ordering(ordering, g)
        orderings = [first] + [torch.randperm(self.D, generator=g) if isinstance(ordering, str) else first
                               for _ in range(self.num_masks - 1)]
        numbers = [connectivity_numbers(o, self.hidden_sizes, g) for o in orderings]
        self.register_buffer("orderings", torch.stack(orderings))
        for l in range(len(self.hidden_sizes)):
            self.register_buffer(f"numbers{l}", torch.stack([m[l + 1] for m in numbers]))
        self.register_buffer("thresholds", torch.arange(1, self.d), persistent=False)   # of the ordinal code
        layer_masks, direct_masks = self._build_masks()
        self.layers = nn.ModuleList(MaskedLinear(masks) for masks in layer_masks)
        # without hidden layers the output layer already is the direct path: the masks of numbers [m0] alone
        self.direct = MaskedLinear(direct_masks, bias=False) if direct and self.hidden_sizes else None
        for layer in self._masked_layers():
            layer.register_buffer("masks", layer.masks, persistent=False)   # rebuilt, not saved: see the docstring
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
        self.init = init
        if init == "orthogonal":
            for layer in self._masked_layers():
                nn.init.orthogonal_(layer.weight)   # from torch's global generator, like the default
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def _check_ordering(self, ordering, g):
        if ordering is None:
            return torch.arange(self.D)
        if isinstance(ordering, str):
            if ordering != "random":
                raise ValueError(f"ordering must be None, 'random' or a permutation of range({self.D}), got {ordering!r}")
            return torch.randperm(self.D, generator=g)
        return as_permutation(ordering, self.D)

    def _masked_layers(self):
        """Every layer holding masks: the hidden and output layers, then the direct path if any."""
        return list(self.layers) + ([self.direct] if self.direct is not None else [])

    def _build_masks(self):
        """The mask stacks (num_masks, out, in) of every layer, and of the direct path, from the
        orderings and numbers buffers, on their device."""
        numbers = [self.numbers(j) for j in range(self.num_masks)]
        layers = [torch.stack(masks) for masks in zip(*(self._to_units(self.masks_from_numbers(m)) for m in numbers))]
        return layers, torch.stack([self._to_units(self.masks_from_numbers(m[:1]))[0] for m in numbers])

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Load as nn.Module does, then rebuild the masks if the orderings or numbers changed, and check
        the masks of a state saved with them (see the class docstring)."""
        names = [f"layers.{i}.masks" for i in range(len(self.layers))]
        names += ["direct.masks"] if self.direct is not None else []
        saved_masks = {name: state_dict.pop(prefix + name) for name in names if prefix + name in state_dict}
        numbers = ["orderings"] + [f"numbers{l}" for l in range(len(self.hidden_sizes))]
        changed = any(prefix + name in state_dict and not torch.equal(state_dict[prefix + name].cpu(),
                                                                      getattr(self, name).cpu()) for name in numbers)
        errors = len(error_msgs)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        if len(error_msgs) > errors:
            return
        if changed:
            layer_masks, direct_masks = self._build_masks()
            for layer, masks in zip(self._masked_layers(), layer_masks + [direct_masks]):
                layer.masks = masks.to(layer.masks.device)
        for name, layer in zip(names, self._masked_layers()):
            if name in saved_masks and not torch.equal(saved_masks[name].to(layer.masks.device), layer.masks):
                error_msgs.append(f"{prefix}{name} in the state differs from the masks rebuilt from its orderings "
                                  f"and numbers: it was saved by a MADE that built its masks differently, so its "
                                  f"weights belong to other masks and cannot be used with these")

    def _to_units(self, masks):
        """Masks between dimensions and hidden units -> between units: each dimension has in_units input
        units and one output per logit, all carrying the dimension's number."""
        masks = list(masks)
        masks[0] = masks[0].repeat_interleave(self.in_units, dim=1)
        masks[-1] = masks[-1].repeat_interleave(self.out_units, dim=0)
        return masks

    # --- state: the device, the masks, the mask cycle ------------------------------------------

    @property
    def device(self):
        return self.orderings.device

    @property
    def dtype(self):
        return self.layers[0].weight.dtype

    def numbers(self, mask_id=0):
        """Connectivity numbers [m0, m1, ..., mL] of one mask: m0 per data dimension, m_l per hidden unit."""
        mask_id = self._check_mask_id(mask_id)
        return [self.orderings[mask_id].argsort() + 1] + [getattr(self, f"numbers{l}")[mask_id]
                                                          for l in range(len(self.hidden_sizes))]

    def unit_numbers(self, mask_id=0):
        """The numbers of one mask per unit of every layer, inputs to outputs: each input and output unit
        carries its dimension's number (m0), each hidden unit its own."""
        m = self.numbers(mask_id)
        return [m[0].repeat_interleave(self.in_units), *m[1:], m[0].repeat_interleave(self.out_units)]

    @property
    def mask_id(self):
        """The mask `loss` trains with now: the next one every `resample_every` steps, in a cycle."""
        return self.steps // self.resample_every % self.num_masks

    def get_extra_state(self):
        return {"steps": self.steps}   # in state_dict, so a saved model resumes its mask cycle

    def set_extra_state(self, state):
        self.steps = int(state["steps"])

    def _check_mask_id(self, mask_id):
        return check_integer(mask_id, "mask_id", 0, f"the index of one of the model's {self.num_masks} masks",
                             self.num_masks - 1)

    def _check_n_masks(self, n_masks):
        if n_masks is None:
            return self.num_masks
        return check_integer(n_masks, "n_masks", 1, f"masks in the ensemble, of the model's {self.num_masks}",
                             self.num_masks)

    # --- the network and the likelihood --------------------------------------------------------

    def check_input(self, x, name="x"):
        """Validated categories: a long tensor (B, *input_shape) or one example (*input_shape), where it was.

        More than one batch dimension is refused, since `log_prob` returns one number per example (B,).
        """
        x = as_categories(x, self.d, self.input_shape, name)
        if x.dim() > len(self.input_shape) + 1:
            shape = ", ".join(map(str, self.input_shape))
            raise ValueError(f"{name} must have shape (B, *input_shape) = (B, {shape}), with one batch dimension, got "
                             f"shape {tuple(x.shape)}; flatten its batch dimensions with {name}.reshape(-1, {shape})")
        return x

    def _flat(self, x, name="x"):
        """Validated categories as a long tensor (B, D) on the model's device."""
        return self.check_input(x, name).to(self.device).reshape(-1, self.D)

    def _encode(self, x):
        """Network input for categories x (..., D): the bits (d = 2), one-hot blocks or thermometer codes."""
        if self.d == 2:
            return x.to(self.dtype)
        if self.encoding == "one-hot":
            return F.one_hot(x, self.d).flatten(-2).to(self.dtype)
        return (x[..., None] >= self.thresholds).flatten(-2).to(self.dtype)

    def network(self, h, mask_id=0):
        """Logits (B, D) for d = 2 or (B, D, d) from float network inputs h (B, D * in_units), one mask.

        Takes the encoded input rather than categories so that it can be differentiated with respect
        to its input, e.g. to check the autoregressive property.
        """
        inputs = h
        for layer in self.layers[:-1]:
            h = F.relu(layer(h, mask_id))
        out = self.layers[-1](h, mask_id)
        if self.direct is not None:
            out = out + self.direct(inputs, mask_id)
        return out.view(h.shape[0], self.D, *self.logit_shape)

    def forward(self, x, mask_id=None):
        """Logits for categories x under one mask (default: the one `loss` trains with now, 0 in eval mode)."""
        mask_id = (self.mask_id if self.training else 0) if mask_id is None else self._check_mask_id(mask_id)
        return self.network(self._encode(self._flat(x)), mask_id)

    def _log_likelihoods(self, x, mask_ids, dims=None):
        """log p_j(x) under each mask j in mask_ids, shape (len(mask_ids), B), for flat categories x (B, D).

        dims: an optional bool (D,) selecting the dimensions to sum (the known ones, when completing).
        """
        h = self._encode(x)   # once, for every mask
        rows = []
        for j in mask_ids:
            logits = self.network(h, j)
            if self.d == 2:
                lp = self.bernoulli_log_prob(logits, x)
            else:
                lp = logits.log_softmax(-1).gather(-1, x[..., None]).squeeze(-1)
            rows.append((lp if dims is None else lp[:, dims]).sum(-1))
        return torch.stack(rows)

    def log_prob(self, x, n_masks=None):
        """log p(x) in nats per example, shape (B,), for x of shape (B, *input_shape).

        The mixture (1/k) sum_j p_j(x) of the first k = n_masks masks (default: all of them), by a
        logsumexp of the per-mask log-likelihoods: exact, and normalized because each p_j is.
        """
        return self._mixture_log_prob(self._flat(x), self._check_n_masks(n_masks))

    def _mixture_log_prob(self, x, k):
        return self._log_likelihoods(x, range(k)).logsumexp(0) - math.log(k)

    MAX_TABLE_STATES = 2 ** 20

    def probability_table(self, n_masks=None):
        """p(x) for every x, by enumeration: a tensor of shape (d,) * D indexed by x itself (for 2D data, the
        (d, d) table of p(x0 = i, x1 = j)). Only for small models: d ** D states, at most 2 ** 20.

        n_masks as in `log_prob`. The entries sum to 1 up to rounding, whatever the weights.
        """
        states = self.d ** self.D
        if states > self.MAX_TABLE_STATES:
            raise ValueError(f"probability_table enumerates all d ** D = {self.d} ** {self.D} inputs, more than "
                             f"{self.MAX_TABLE_STATES}: use log_prob on the inputs you need instead")
        k = self._check_n_masks(n_masks)
        grid = torch.cartesian_prod(*[torch.arange(self.d, device=self.device)] * self.D).reshape(states, self.D)
        with torch.no_grad():   # x0 varies slowest: row-major order, so the reshape indexes the table by x
            log_p = torch.cat([self._mixture_log_prob(chunk, k) for chunk in grid.split(2 ** 16)])
        return log_p.exp().reshape((self.d,) * self.D)

    def loss(self, x):
        """Mean NLL in nats per dimension: training mode, under the current mask, then a step of the
        mask cycle; eval mode, that of the model's distribution (the mixture of all its masks)."""
        x = self._flat(x)
        check_examples(x)
        if not self.training:
            return -self._mixture_log_prob(x, self.num_masks).mean() / self.D
        nll = -self._log_likelihoods(x, [self.mask_id])[0].mean() / self.D
        self.steps += 1
        return nll

    # --- sampling --------------------------------------------------------------------------------

    @torch.no_grad()
    def sample(self, n, mask_id=None, n_masks=None, given=None, known=None, method="fast", uniforms=None):
        """Draw n samples, a long tensor (n, *input_shape) on the model's device.

        mask_id: sample with this one mask (and its ordering). Otherwise the mixture of the first
            n_masks masks (default: all): each sample uses one mask, drawn uniformly or, when
            completing, in proportion to that mask's probability of the known entries, which makes it
            the exact conditional of the mixture.
        given, known: completion. `known` is a bool tensor of shape input_shape; known entries are
            copied from `given` (n, *input_shape) and the rest sampled. This is an exact conditional
            sample only if the known dimensions come first in the ordering, so anything else raises
            (to complete images from their top half, use the natural ordering).
        method: "fast" (one forward pass of work, see `_sample_fast`), "plain" (D forward passes), or a
            function with the signature of `MADE._sample_plain`, (model, u, mask_id, given, known) -> x.
        uniforms: optional tensor (n, D) of numbers in [0, 1) driving the draws, by data dimension;
            the two methods give the same samples from the same uniforms.
        """
        n = check_integer(n, "n", 1, "the number of samples")
        if mask_id is not None and n_masks is not None:
            raise ValueError("pass either mask_id (one mask) or n_masks (a mixture), not both")
        mask_ids = [self._check_mask_id(mask_id)] if mask_id is not None else range(self._check_n_masks(n_masks))
        samplers = {"fast": self._sample_fast, "plain": self._sample_plain}
        if callable(method):   # a sampler written outside the class, e.g. a learner's (notebooks/exercises)
            sampler = functools.partial(method, self)
        elif method in samplers:
            sampler = samplers[method]
        else:
            raise ValueError(f"method must be 'fast', 'plain' or a function (model, u, mask_id, given, known) -> x, "
                             f"got {method!r}")
        uniforms = self._check_uniforms(uniforms, n)
        if given is None and known is None:
            log_weights = torch.zeros(n, len(mask_ids), device=self.device)   # masks drawn uniformly
        else:
            given, known = self._check_completion(n, given, known, mask_ids)
            log_weights = self._log_likelihoods(given, mask_ids, dims=known).T   # p(j | known) ~ p_j(x_known)
        choice = torch.multinomial(log_weights.softmax(1), 1).squeeze(1)
        known = [False] * self.D if known is None else known.tolist()
        x = torch.empty(n, self.D, dtype=torch.long, device=self.device)
        for i, j in enumerate(mask_ids):   # samples grouped by mask
            rows = (choice == i).nonzero().squeeze(1)
            if len(rows):
                x[rows] = sampler(uniforms[rows], j, None if given is None else given[rows], known)
        return x.view(n, *self.input_shape)

    def _check_uniforms(self, uniforms, n):
        if uniforms is None:
            return torch.rand(n, self.D, device=self.device, dtype=self._draw_dtype(self.dtype))
        if not torch.is_tensor(uniforms) or not uniforms.dtype.is_floating_point:
            raise ValueError(f"uniforms must be a floating-point tensor of shape {(n, self.D)}, got {uniforms!r:.60}")
        if tuple(uniforms.shape) != (n, self.D):
            raise ValueError(f"uniforms must have shape {(n, self.D)}, got {tuple(uniforms.shape)}")
        if not ((uniforms >= 0) & (uniforms < 1)).all():   # NaN fails both comparisons
            raise ValueError("uniforms must lie in [0, 1) (no NaN): draw them with torch.rand")
        return uniforms.to(self.device, self._draw_dtype(uniforms.dtype))   # never rounded to the model's dtype

    def _check_completion(self, n, given, known, mask_ids):
        """Validated given (n, D) and known (D,); the known dimensions must come first in every ordering used."""
        if given is None or known is None:
            raise ValueError("completion needs both `given` and `known`")
        known = torch.as_tensor(known, device=self.device)
        if known.dtype != torch.bool or tuple(known.shape) != self.input_shape:
            raise ValueError(f"known must be a bool tensor of shape {self.input_shape}, "
                             f"got {known.dtype} of shape {tuple(known.shape)}")
        given = self._flat(given, "given")
        if given.shape[0] != n:
            raise ValueError(f"given must hold n = {n} examples, got {given.shape[0]}")
        known = known.flatten()
        for j in mask_ids:
            in_order = known[self.orderings[j]]
            if (in_order[1:] > in_order[:-1]).any():   # a known dimension after an unknown one
                raise ValueError(
                    f"the known dimensions must come first in the ordering of mask {j}, otherwise copying them "
                    f"is not an exact conditional sample; for top-half completion use the natural ordering")
        return given, known

    @staticmethod
    def _draw_dtype(dtype):
        """The dtype of the draws: at least float32. In bfloat16 (8 bits of precision) uniforms are multiples
        of 2^-8 and a small probability p would be compared with 0 or 2^-8, not p."""
        return torch.promote_types(dtype, torch.float32)

    def _categories(self, logits, u):
        """Inverse-CDF draw from one dimension's logits ((n,) or (n, d)) with uniforms u (n,).

        Probabilities and uniforms are compared in the more precise of their dtypes (at least float32),
        so that neither is rounded to the other's: a float64 uniform just below 1 would round to 1.0 in
        float32. Category k is drawn when cdf[k - 1] <= u < cdf[k], so u = 0 never picks a category whose
        probability is 0.
        """
        dtype = torch.promote_types(self._draw_dtype(logits.dtype), u.dtype)
        logits, u = logits.to(dtype), u.to(dtype)
        if self.d == 2:
            return (u < torch.sigmoid(logits)).long()
        cdf = logits.softmax(-1).cumsum(-1)
        return (cdf <= u[:, None]).sum(-1).clamp(max=self.d - 1)   # clamp: rounding can leave cdf[-1] <= u

    def _sample_plain(self, u, mask_id, given, known):
        """Reference sampler: one full forward pass per dimension, in the mask's ordering."""
        x = torch.zeros(u.shape, dtype=torch.long, device=u.device)
        for dim in self.orderings[mask_id].tolist():
            x[:, dim] = given[:, dim] if known[dim] else self._categories(
                self.network(self._encode(x), mask_id)[:, dim], u[:, dim])
        return x

    def _sample_fast(self, u, mask_id, given, known):
        """Sampler doing about one forward pass of arithmetic in total; the same draws as `_sample_plain`.

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
        sorted_numbers, perms = zip(*(m.sort(stable=True) for m in self.unit_numbers(mask_id)))
        # first[l][t]: (sorted) index of layer l's first unit numbered >= t, so its units numbered t are
        # first[l][t]:first[l][t + 1] and those numbered < t are :first[l][t]
        first = [torch.searchsorted(m, torch.arange(D + 2, device=u.device)).tolist() for m in sorted_numbers[:-1]]
        masked = [(layer.weight * layer.masks[mask_id])[rows[:, None], cols]
                  for layer, rows, cols in zip(self.layers, perms[1:], perms[:-1])]
        w_hidden = [w.T.contiguous() for w in masked[:-1]]                # (in, out): row slices are cheap
        w_out = masked[-1].view(D, *self.logit_shape, -1).movedim(-1, 1)   # (D, H, *logit_shape), by position
        b_out = self.layers[-1].bias[perms[-1]].view(D, *self.logit_shape)
        w_direct = None
        if self.direct is not None:   # inputs -> outputs, by position
            w_direct = (self.direct.weight * self.direct.masks[mask_id])[perms[-1][:, None], perms[0]]
            w_direct = w_direct.view(D, *self.logit_shape, -1).movedim(-1, 1)   # (D, inputs, *logit_shape)
        acts = [torch.zeros(n, layer.in_features, dtype=self.dtype, device=u.device)   # each layer's input, sorted
                for layer in self.layers]
        pre = [layer.bias[rows].expand(n, -1).clone() for layer, rows in zip(self.layers[:-1], perms[1:])]

        x = torch.zeros(n, D, dtype=torch.long, device=u.device)
        for t, dim in enumerate(self.orderings[mask_id].tolist(), 1):   # dim is at position t
            if known[dim]:
                x[:, dim] = given[:, dim]
            else:
                final = first[-1][t]                       # last-layer units numbered < t
                logits = acts[-1][:, :final] @ w_out[t - 1, :final] + b_out[t - 1]
                if w_direct is not None:
                    final_inputs = first[0][t]             # input units numbered < t
                    logits = logits + acts[0][:, :final_inputs] @ w_direct[t - 1, :final_inputs]
                x[:, dim] = self._categories(logits, u[:, dim])
            if t == D:
                break
            acts[0][:, first[0][t]:first[0][t + 1]] = self._encode(x[:, dim:dim + 1])
            for l, (w, z) in enumerate(zip(w_hidden, pre)):
                now_final = slice(first[l][t], first[l][t + 1])     # layer l's units numbered t
                later = first[l + 1][t]                             # the next layer's units numbered >= t
                if now_final.start < now_final.stop:
                    z[:, later:].addmm_(acts[l][:, now_final], w[now_final, later:])
                next_final = slice(later, first[l + 1][t + 1])      # the next layer's units numbered t
                if next_final.start < next_final.stop:
                    acts[l + 1][:, next_final] = F.relu(z[:, next_final])
        return x


def dependencies(model, mask_id=0, h=None):
    """dep[i, j]: does dimension i's output change with dimension j's input units? A bool (D, D) matrix.

    Computed by autograd, d logits / d inputs at one network input h (default: uniform random numbers,
    a relaxed input at which the ReLUs are not all off), summed over the units of each dimension.
    """
    if h is None:
        h = torch.rand(model.D * model.in_units, dtype=model.dtype, device=model.device)
    jac = torch.autograd.functional.jacobian(lambda v: model.network(v[None], mask_id).reshape(-1), h,
                                             vectorize=True)
    return jac.reshape(model.D, -1, model.D, model.in_units).abs().sum((1, 3)) > 0
