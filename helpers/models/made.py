"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al. 2015).

A MADE is an MLP whose weights are multiplied by fixed 0/1 masks, so that one forward pass computes
every conditional of an autoregressive factorization

    p(x) = prod_r p(x_o(r) | x_o(1), ..., x_o(r-1)),   x in {0, ..., d-1}^D,

for an ordering o of the D dimensions. The masks come from connectivity numbers (`masks.py`: a hidden unit
numbered m sees only the dimensions at positions 1..m of the ordering, and the output of the dimension at
position r reads only units numbered below r). Sampling lives in `sampling.py`.

Units. d = 2: one input unit per dimension (the bit) and one output logit (a Bernoulli). d > 2: d
logits per dimension (a softmax) and, at the input, a one-hot block of d units (`encoding="one-hot"`,
the course's model) or a thermometer code of d - 1 units [x >= 1, ..., x >= d - 1]
(`encoding="ordinal"`), in which neighbouring values share all but one unit. Every unit of a
dimension carries that dimension's number, so the encoding leaves the autoregressive structure as
it is. Units are grouped by dimension in data order (not ordering order).

With num_masks > 1 the model holds several mask sets and trains on them in turn: the training loop calls
`next_mask()` after each update (connectivity-agnostic training; order-agnostic too with ordering="random").
As a distribution it is the uniform mixture of its masks: `log_prob` and `sample` use all of them unless told
otherwise.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import as_categories, check_examples, check_integer, check_seed
from . import masks as mask_maths
from . import sampling

ENCODINGS = ("one-hot", "ordinal")
INITS = ("pytorch", "orthogonal")


def bernoulli_log_prob(logits, x):
    """log p(x_i | x_<i) = x_i log σ(ℓ_i) + (1 − x_i) log σ(−ℓ_i) of every bit x (long, any shape) from its
    logit ℓ (same shape), computed without forming σ(ℓ), so it stays finite for any logit."""
    return -F.binary_cross_entropy_with_logits(logits, x.to(logits.dtype), reduction="none")


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
    resample_every: `next_mask()` (called by the training loop after each update) moves to the next mask
        every this many calls.
    direct: direct connections from the inputs to the outputs (the paper's MNIST models): a masked
        linear path, strict like the output layer, added to the hidden path's logits.
    encoding: for d > 2, "one-hot" (d input units per dimension) or "ordinal" (d - 1 threshold units).
    init: the initial weights: "pytorch" (nn.Linear's own) or "orthogonal" (the MADE authors' released
        code: each weight matrix a slice of a random orthogonal matrix, before masking, and zero biases).

    The masks follow from the orderings and numbers, so `state_dict` leaves them out (they take
    num_masks times the weights' size, gigabytes for wide models) and keeps those small buffers;
    loading a state rebuilds the masks from its orderings and numbers. States that hold the masks
    (`layers.N.masks`, `direct.masks`, as saved before) still load: their masks must equal the rebuilt ones.
    connectivity_numbers, masks_from_numbers, bernoulli_log_prob: functions with the signatures of the package's
        (`masks.connectivity_numbers`, `masks.masks_from_numbers`, `made.bernoulli_log_prob`) to use in their place:
        the one way to put a learner's function into a model (the exercise checks do).
    """

    def __init__(
        self,
        input_shape,
        d,
        hidden_sizes,
        ordering=None,
        num_masks=1,
        seed=0,
        resample_every=1,
        direct=False,
        encoding="one-hot",
        init="pytorch",
        connectivity_numbers=mask_maths.connectivity_numbers,
        masks_from_numbers=mask_maths.masks_from_numbers,
        bernoulli_log_prob=bernoulli_log_prob,
    ):
        super().__init__()
        self.bernoulli_log_prob, self.masks_from_numbers = bernoulli_log_prob, masks_from_numbers
        shape = (input_shape,) if not isinstance(input_shape, (tuple, list, torch.Size)) else input_shape
        self.input_shape = tuple(
            check_integer(s, "each size in input_shape", 1, f"the shape {input_shape} of one example")
            for s in shape
        )
        self.D = math.prod(self.input_shape)
        self.d = check_integer(d, "d", 2, "the number of categories")
        if not isinstance(hidden_sizes, (list, tuple)):
            raise ValueError(
                f"hidden_sizes must be a list of hidden layer widths, such as [512, 512] (or [] for "
                f"none), got {hidden_sizes!r}"
            )
        self.hidden_sizes = tuple(
            check_integer(h, "each hidden size", 1, f"units of a hidden layer, in {hidden_sizes}")
            for h in hidden_sizes
        )
        self.num_masks = check_integer(num_masks, "num_masks", 1, "mask sets held by the model")
        self.resample_every = check_integer(resample_every, "resample_every", 1, "training steps per mask")
        if encoding not in ENCODINGS or (encoding == "ordinal" and self.d == 2):
            raise ValueError(
                f"encoding must be 'one-hot' or, for d > 2, 'ordinal', got {encoding!r} with d = {self.d} "
                f"(with d = 2 the input is one bit, its own code in both)"
            )
        self.encoding = encoding
        self.in_units = 1 if self.d == 2 else self.d if encoding == "one-hot" else self.d - 1  # per dimension
        self.out_units = 1 if self.d == 2 else self.d  # logits per dimension
        self.logit_shape = () if self.d == 2 else (self.d,)  # one dimension's output
        self.steps = 0  # calls of `next_mask`, one per training update; they fix the current mask (`mask_id`)
        if not isinstance(direct, (bool, np.bool_)):
            raise ValueError(
                f"direct must be True or False (direct connections from the inputs to the outputs), "
                f"got {direct!r}"
            )

        g = torch.Generator().manual_seed(check_seed(seed))
        first = self._check_ordering(ordering, g)
        orderings = [first] + [
            torch.randperm(self.D, generator=g) if isinstance(ordering, str) else first
            for _ in range(self.num_masks - 1)
        ]
        numbers = [connectivity_numbers(o, self.hidden_sizes, g) for o in orderings]
        self.register_buffer("orderings", torch.stack(orderings))
        for l in range(len(self.hidden_sizes)):
            self.register_buffer(f"numbers{l}", torch.stack([m[l + 1] for m in numbers]))
        self.register_buffer("thresholds", torch.arange(1, self.d), persistent=False)  # of the ordinal code
        layer_masks, direct_masks = self._build_masks()
        self.layers = nn.ModuleList(MaskedLinear(masks) for masks in layer_masks)
        # without hidden layers the output layer already is the direct path: the masks of numbers [m0] alone
        self.direct = MaskedLinear(direct_masks, bias=False) if direct and self.hidden_sizes else None
        for layer in self.masked_layers():
            layer.register_buffer(
                "masks", layer.masks, persistent=False
            )  # rebuilt, not saved: see the docstring
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(map(repr, INITS))}, got {init!r}")
        self.init = init
        if init == "orthogonal":
            for layer in self.masked_layers():
                nn.init.orthogonal_(layer.weight)  # from torch's global generator, like the default
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)

    def _check_ordering(self, ordering, g):
        if ordering is None:
            return torch.arange(self.D)
        if isinstance(ordering, str):
            if ordering != "random":
                raise ValueError(
                    f"ordering must be None, 'random' or a permutation of range({self.D}), got {ordering!r}"
                )
            return torch.randperm(self.D, generator=g)
        return mask_maths.as_permutation(ordering, self.D)

    def masked_layers(self):
        """Every layer holding masks: the hidden and output layers, then the direct path if any."""
        return list(self.layers) + ([self.direct] if self.direct is not None else [])

    def _build_masks(self):
        """The mask stacks (num_masks, out, in) of every layer, and of the direct path, from the
        orderings and numbers buffers, on their device."""
        numbers = [self.numbers(j) for j in range(self.num_masks)]
        layers = [
            torch.stack(masks)
            for masks in zip(*(self._to_units(self.masks_from_numbers(m)) for m in numbers))
        ]
        return layers, torch.stack([self._to_units(self.masks_from_numbers(m[:1]))[0] for m in numbers])

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        """Load as nn.Module does, then rebuild the masks if the orderings or numbers changed, and check
        the masks of a state saved with them (see the class docstring)."""
        names = [f"layers.{i}.masks" for i in range(len(self.layers))]
        names += ["direct.masks"] if self.direct is not None else []
        saved_masks = {name: state_dict.pop(prefix + name) for name in names if prefix + name in state_dict}
        numbers = ["orderings"] + [f"numbers{l}" for l in range(len(self.hidden_sizes))]
        changed = any(
            prefix + name in state_dict
            and not torch.equal(state_dict[prefix + name].cpu(), getattr(self, name).cpu())
            for name in numbers
        )
        errors = len(error_msgs)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
        if len(error_msgs) > errors:
            return
        if changed:
            layer_masks, direct_masks = self._build_masks()
            for layer, masks in zip(self.masked_layers(), layer_masks + [direct_masks]):
                layer.masks = masks.to(layer.masks.device)
        for name, layer in zip(names, self.masked_layers()):
            if name in saved_masks and not torch.equal(saved_masks[name].to(layer.masks.device), layer.masks):
                error_msgs.append(
                    f"{prefix}{name} in the state differs from the masks rebuilt from its orderings "
                    f"and numbers: it was saved by a MADE that built its masks differently, so its "
                    f"weights belong to other masks and cannot be used with these"
                )

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
        mask_id = self.check_mask_id(mask_id)
        return [self.orderings[mask_id].argsort() + 1] + [
            getattr(self, f"numbers{l}")[mask_id] for l in range(len(self.hidden_sizes))
        ]

    def unit_numbers(self, mask_id=0):
        """The numbers of one mask per unit of every layer, inputs to outputs: each input and output unit
        carries its dimension's number (m0), each hidden unit its own."""
        m = self.numbers(mask_id)
        return [m[0].repeat_interleave(self.in_units), *m[1:], m[0].repeat_interleave(self.out_units)]

    @property
    def mask_id(self):
        """The mask training uses now: the next one every `resample_every` calls of `next_mask`, in a cycle."""
        return self.steps // self.resample_every % self.num_masks

    def next_mask(self):
        """One step of the mask cycle: the training loop calls it after each update (karpathy's update_masks)."""
        self.steps += 1

    def get_extra_state(self):
        return {"steps": self.steps}  # in state_dict, so a saved model resumes its mask cycle

    def set_extra_state(self, state):
        self.steps = int(state["steps"])

    def check_mask_id(self, mask_id):
        """mask_id as an int, or a ValueError unless it indexes one of the model's masks."""
        return check_integer(
            mask_id,
            "mask_id",
            0,
            f"the index of one of the model's {self.num_masks} masks",
            self.num_masks - 1,
        )

    def check_n_masks(self, n_masks):
        """The number of masks in an ensemble: all of them for None, else an int in [1, num_masks]."""
        if n_masks is None:
            return self.num_masks
        return check_integer(
            n_masks, "n_masks", 1, f"masks in the ensemble, of the model's {self.num_masks}", self.num_masks
        )

    # --- the network and the likelihood --------------------------------------------------------

    def check_input(self, x, name="x"):
        """Validated categories: a long tensor (B, *input_shape) or one example (*input_shape), where it was.

        More than one batch dimension is refused, since `log_prob` returns one number per example (B,).
        """
        x = as_categories(x, self.d, self.input_shape, name)
        if x.dim() > len(self.input_shape) + 1:
            shape = ", ".join(map(str, self.input_shape))
            raise ValueError(
                f"{name} must have shape (B, *input_shape) = (B, {shape}), with one batch dimension, got "
                f"shape {tuple(x.shape)}; flatten its batch dimensions with {name}.reshape(-1, {shape})"
            )
        return x

    def flat_input(self, x, name="x"):
        """Validated categories as a long tensor (B, D) on the model's device."""
        return self.check_input(x, name).to(self.device).reshape(-1, self.D)

    def encode(self, x):
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
        """Logits for categories x under one mask (default: the one training uses now, 0 in eval mode)."""
        mask_id = (self.mask_id if self.training else 0) if mask_id is None else self.check_mask_id(mask_id)
        return self.network(self.encode(self.flat_input(x)), mask_id)

    def log_likelihoods(self, x, mask_ids, dims=None):
        """log p_j(x) under each mask j in mask_ids, shape (len(mask_ids), B), for flat categories x (B, D).

        dims: an optional bool (D,) selecting the dimensions to sum (the known ones, when completing).
        """
        h = self.encode(x)  # once, for every mask
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
        return self._mixture_log_prob(self.flat_input(x), self.check_n_masks(n_masks))

    def _mixture_log_prob(self, x, k):
        return self.log_likelihoods(x, range(k)).logsumexp(0) - math.log(k)

    MAX_TABLE_STATES = 2**20

    def probability_table(self, n_masks=None):
        """p(x) for every x, by enumeration: a tensor of shape (d,) * D indexed by x itself (for 2D data, the
        (d, d) table of p(x0 = i, x1 = j)). Only for small models: d ** D states, at most 2 ** 20.

        n_masks as in `log_prob`. The entries sum to 1 up to rounding, whatever the weights.
        """
        states = self.d**self.D
        if states > self.MAX_TABLE_STATES:
            raise ValueError(
                f"probability_table enumerates all d ** D = {self.d} ** {self.D} inputs, more than "
                f"{self.MAX_TABLE_STATES}: use log_prob on the inputs you need instead"
            )
        k = self.check_n_masks(n_masks)
        grid = torch.cartesian_prod(*[torch.arange(self.d, device=self.device)] * self.D).reshape(
            states, self.D
        )
        with torch.no_grad():  # x0 varies slowest: row-major order, so the reshape indexes the table by x
            log_p = torch.cat([self._mixture_log_prob(chunk, k) for chunk in grid.split(2**16)])
        return log_p.exp().reshape((self.d,) * self.D)

    def loss(self, x):
        """Mean NLL in nats per dimension: training mode, under the current mask (`next_mask` moves on);
        eval mode, that of the model's distribution (the mixture of all its masks)."""
        x = self.flat_input(x)
        check_examples(x)
        if not self.training:
            return -self._mixture_log_prob(x, self.num_masks).mean() / self.D
        return -self.log_likelihoods(x, [self.mask_id])[0].mean() / self.D

    def sample(self, n, mask_id=None, n_masks=None, given=None, known=None, method="fast", uniforms=None):
        """Draw n samples, a long tensor (n, *input_shape): `sampling.sample(self, ...)`, which documents the
        arguments (one mask or the mixture, completion of `given` where `known`, the plain or fast sampler)."""
        return sampling.sample(self, n, mask_id, n_masks, given, known, method, uniforms)
