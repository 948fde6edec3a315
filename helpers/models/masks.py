"""MADE's masks, as pure functions of an ordering and connectivity numbers (Germain et al. 2015, section 4).

`connectivity_numbers` numbers the units of one mask, `masks_from_numbers` turns numbers into masks. A hidden
unit numbered m sees only the dimensions at positions 1..m of the ordering, and the output of the dimension at
position r reads only units numbered below r. `reachability` and `dependencies` check the result: which input
reaches which output through the masks, and through a model's network by autograd.
"""

import numpy as np
import torch


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
    except (TypeError, ValueError, RuntimeError):  # not a sequence, or nothing numeric
        o = None
    if (
        o is None
        or o.dtype.is_floating_point
        or o.dtype.is_complex
        or o.dtype == torch.bool
        or o.dim() != 1
        or len(o) == 0
        or (D is not None and len(o) != D)
        or not torch.equal(o.sort().values.long(), torch.arange(len(o)))
    ):
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
            raise ValueError(
                f"with D = {len(ordering)} dimension(s) no hidden unit can feed an output: "
                f"use no hidden layers"
            )
        numbers.append(torch.randint(low, len(ordering), (size,), generator=generator))
    return [m.to(device) for m in numbers]


def masks_from_numbers(numbers):
    """The L + 1 masks of connectivity numbers [m0, m1, ..., mL]: 0/1 tensors of shape (out, in).

    Hidden layer l keeps the weight from unit j below to its unit k when m_l[k] >= m_{l-1}[j]. The
    outputs are numbered like the inputs (m0), and the output layer keeps a weight only when
    m0[i] > m_L[j], strictly: no output may see its own dimension.
    """
    check_numbers(numbers)
    masks = [m_out[:, None] >= m_in[None, :] for m_in, m_out in zip(numbers[:-1], numbers[1:])]
    masks.append(numbers[0][:, None] > numbers[-1][None, :])
    return [m.to(torch.uint8) for m in masks]


def check_numbers(numbers):
    if len(numbers) == 0:
        raise ValueError("numbers must hold at least the inputs' numbers m0")
    D = len(numbers[0])
    for l, m in enumerate(numbers):
        layer = "layer 0 (the inputs)" if l == 0 else f"hidden layer {l}"
        if not torch.is_tensor(m) or m.dim() != 1 or m.dtype.is_floating_point or len(m) == 0:
            raise ValueError(f"{layer}: numbers must be a non-empty 1-D integer tensor, got {m!r}")
        if int(m.min()) < 1 or int(m.max()) > D:
            raise ValueError(
                f"{layer}: numbers must lie in [1, D] = [1, {D}], got [{int(m.min())}, {int(m.max())}]"
            )
        if l > 0 and D > 1 and int(m.min()) > D - 1:
            raise ValueError(
                f"{layer}: all its numbers are D = {D} or more, so no output can read it; "
                f"hidden numbers belong in [1, D - 1]"
            )
    if not torch.equal(numbers[0].sort().values.cpu(), torch.arange(1, D + 1)):
        raise ValueError(
            f"layer 0 (the inputs) must number the {D} dimensions 1..{D}, each once "
            f"(their positions in the ordering), got {numbers[0].tolist()}"
        )


def reachability(masks):
    """Which input reaches which output through masks [(h1, in), ..., (out, hL)]: a bool (out, in) matrix.

    The product of the 0/1 matrices counts the paths; a path exists even where the weights or a
    ReLU happen to cancel it, so this checks the masks for every input, not one.
    """
    paths = masks[0].float()
    for m in masks[1:]:
        paths = (m.float() @ paths > 0).float()
    return paths > 0


def dependencies(model, mask_id=0, h=None):
    """dep[i, j]: does dimension i's output change with dimension j's input units? A bool (D, D) matrix.

    Computed by autograd, d logits / d inputs at one network input h (default: uniform random numbers,
    a relaxed input at which the ReLUs are not all off), summed over the units of each dimension.
    """
    if h is None:
        h = torch.rand(model.D * model.in_units, dtype=model.dtype, device=model.device)
    jac = torch.autograd.functional.jacobian(
        lambda v: model.network(v[None], mask_id).reshape(-1), h, vectorize=True
    )
    return jac.reshape(model.D, -1, model.D, model.in_units).abs().sum((1, 3)) > 0
