"""Input validation shared by the package: clear errors instead of silent wrong answers."""

import contextlib
import math
import numbers
import operator

import numpy as np
import torch

# Unsigned widths that torch can hold but not reduce (min/max): converted, after a range check, to int64.
_WIDE_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)
_values_checked = False  # set by `values_checked` while a batch already checked on the CPU is used


@contextlib.contextmanager
def values_checked():
    """Within it, `as_categories` skips its range check (the only part that reads the values).

    For `train_epochs`, which checks each batch on the CPU before moving it to a GPU: the model's own
    check of the moved batch would read its minimum and maximum back from the device, stalling it
    at every batch.
    """
    global _values_checked
    previous, _values_checked = _values_checked, True
    try:
        yield
    finally:
        _values_checked = previous


def as_categories(x, d, event_shape=(), name="x"):
    """Return `x` as a long tensor of categories in [0, d - 1] with trailing shape `event_shape`.

    Accepts integer (or bool) tensors, numpy arrays of any integer width (uint16 images included,
    and reversed views such as np.flip(x)) and numpy integer scalars. Raises ValueError naming what
    is wrong: a floating-point or object dtype, a wrong trailing shape, or values out of range.
    """
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if torch.is_tensor(x) and x.dtype in _WIDE_UNSIGNED:
        x = x.cpu().numpy()  # range-checked below in numpy, which handles every unsigned width
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "biuf":  # objects, strings, dates: nothing torch can hold as categories
            raise ValueError(
                f"{name} must hold integer categories in [0, {d - 1}], got a numpy array of dtype "
                f"{x.dtype}; convert it with np.asarray(x, dtype=np.int64)"
            )
        if x.dtype.kind == "u" and x.size > 0 and x.max() > d - 1:  # before int64 could wrap uint64 values
            raise ValueError(
                f"{name} has values in [{x.min()}, {x.max()}], outside the categories [0, {d - 1}]"
            )
        if x.dtype.kind == "u" and x.dtype.itemsize > 1:
            x = x.astype(np.int64)
        x = torch.from_numpy(np.require(x, requirements="C"))  # torch takes no negative strides
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    if x.dtype.is_floating_point or x.dtype.is_complex:
        raise ValueError(
            f"{name} must hold integer categories in [0, {d - 1}], got dtype {x.dtype}; "
            f"convert it with x.long() if its values are whole numbers"
        )
    event_shape = tuple(event_shape)
    k = len(event_shape)
    if x.dim() < k or tuple(x.shape[x.dim() - k :]) != event_shape:
        raise ValueError(
            f"{name} must have trailing shape {event_shape} (batch dimensions first), got shape {tuple(x.shape)}"
        )
    if x.numel() > 0 and not _values_checked:
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > d - 1:
            raise ValueError(f"{name} has values in [{lo}, {hi}], outside the categories [0, {d - 1}]")
    return x.long()


def check_examples(x):
    """Raise ValueError if the batch `x` holds no examples: its mean loss would be NaN, not an error."""
    if x.numel() == 0:
        raise ValueError(f"loss needs at least one example, got an empty batch of shape {tuple(x.shape)}")


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


def check_seed(value, name="seed"):
    """A seed as an int: any integer in [0, 2**32 - 1], the range numpy's global seed accepts."""
    return check_integer(value, name, 0, "a random seed", 2**32 - 1)


def check_positive(value, name, meaning):
    """Return `value` as a float, or raise ValueError if it is not a positive finite real number.

    Any real number is accepted: Python and numpy ints and floats, and 0-d real tensors; bools are not.
    """
    if (
        torch.is_tensor(value)
        and value.dim() == 0
        and value.dtype != torch.bool
        and not value.dtype.is_complex
    ):
        number = value.item()
    elif isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        number = float(value)
    else:
        number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} ({meaning}) must be a positive finite number, got {value!r}")
    return float(number)


def as_numpy(x):
    """`x` as a numpy array; a tensor is detached and moved to the CPU first (a model's output on a GPU)."""
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


def as_floats(values, name):
    """`values` as a 1-D float64 numpy array: numbers, an array, a tensor, or a list of one-number tensors
    (the `loss` of each step appended as it is, with its grad, on any device). Raises ValueError naming
    `name` if they are not numbers."""
    if isinstance(values, (list, tuple)):
        values = [as_numpy(v) for v in values]  # np.asarray would refuse a tensor with grad or on a GPU
    try:
        values = as_numpy(values)
    except ValueError as error:  # ragged
        raise ValueError(f"{name} must be numbers, one per loss: {error}") from None
    if values.dtype.kind not in "biuf":  # None, strings, dicts: numpy would make objects, or None a NaN
        raise ValueError(f"{name} must be numbers, one per loss, got values of numpy dtype {values.dtype}")
    return values.astype(np.float64).reshape(-1)


def check_probabilities(p, name):
    """Return `p` (a numpy array or tensor of any shape) as a float64 numpy array, or raise ValueError if it
    is not a probability distribution: non-empty, finite, >= 0 and summing to 1 within 1e-5 (a float32
    softmax over the 40000 states of a 200 x 200 table is off by about 1e-6 at most; a distribution off by
    1e-3, or counts, logits and log-probabilities, are refused)."""
    p = as_numpy(p).astype(np.float64)
    if p.size == 0:
        raise ValueError(f"{name} is empty: it must hold probabilities")
    if not np.isfinite(p).all() or p.min() < 0:
        raise ValueError(
            f"{name} must hold probabilities (finite and >= 0), got values in [{p.min():g}, {p.max():g}]; "
            f"exponentiate log-probabilities first"
        )
    if abs(p.sum() - 1) > 1e-5:
        raise ValueError(f"{name} sums to {p.sum():.6g}, not 1: pass probabilities, not counts or logits")
    return p
