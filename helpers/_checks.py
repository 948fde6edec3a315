"""Input validation shared by the models: clear errors instead of silent wrong answers."""
import operator

import numpy as np
import torch


def as_categories(x, d, event_shape=(), name="x"):
    """Return `x` as a long tensor of categories in [0, d - 1] with trailing shape `event_shape`.

    Accepts integer (or bool) tensors and numpy arrays. Raises ValueError naming what is wrong:
    a floating-point dtype, a wrong trailing shape, or values out of range.
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    if x.dtype.is_floating_point or x.dtype.is_complex:
        raise ValueError(
            f"{name} must hold integer categories in [0, {d - 1}], got dtype {x.dtype}; "
            f"convert it with x.long() if its values are whole numbers")
    event_shape = tuple(event_shape)
    k = len(event_shape)
    if x.dim() < k or tuple(x.shape[x.dim() - k:]) != event_shape:
        raise ValueError(
            f"{name} must have trailing shape {event_shape} (batch dimensions first), got shape {tuple(x.shape)}")
    if x.numel() > 0:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > d - 1:
            raise ValueError(f"{name} has values in [{lo}, {hi}], outside the categories [0, {d - 1}]")
    return x.long()


def check_integer(value, name, minimum, meaning, maximum=None):
    """Return `value` as an int, or raise ValueError if it is not an integer in [minimum, maximum].

    Any integral number is accepted (Python and numpy integers, 0-d integer tensors); bools are not,
    since a True passed for a count or an index is almost certainly a mistake.
    """
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        number = operator.index(value)
    except TypeError:
        number = None
    if number is None or number < minimum or (maximum is not None and number > maximum):
        bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} ({meaning}) must be an integer {bounds}, got {value!r}")
    return number
