"""Where models train and how precisely: the device policy (CUDA when present, small models on the CPU), checks
of a device asked for, its description on progress lines, and full float32 precision for exact comparisons."""

import contextlib
import itertools

import torch

# Models with fewer parameters than this train on the CPU unless a device is given: their epochs are
# too small to keep a GPU busy, so launch latency, synchronizations and state copies would dominate.
SMALL_MODEL_PARAMETERS = 10_000


def default_device():
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def training_device(model):
    """The device `train_epochs` uses when given none, and why: CUDA when present, except for models
    below SMALL_MODEL_PARAMETERS parameters, which stay on the CPU. Returns (device, reason or None)."""
    device = default_device()
    size = sum(p.numel() for p in model.parameters())
    if device.type != "cpu" and size < SMALL_MODEL_PARAMETERS:
        return torch.device("cpu"), (
            f"kept on the CPU: a model of {size} parameters (< {SMALL_MODEL_PARAMETERS}) "
            f"trains faster there than on {device.type}; pass device= to override"
        )
    return device, None


@contextlib.contextmanager
def full_float32_precision():
    """Within it, float32 matrix products are computed in full float32 precision, then the previous
    setting (`torch.get_float32_matmul_precision()`) is restored.

    With `torch.set_float32_matmul_precision("high")` (TF32 on NVIDIA GPUs, a common Colab line),
    products of matrices keep only about 10 bits of their inputs, while vector products do not: two
    computations that agree exactly in float32, such as MADE's plain and fast samplers, can then
    differ. Compare them inside this context.
    """
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def check_device(device, name="device"):
    """`device` as a torch.device on which a tensor can be made here, or None (the automatic choice)."""
    if device is None:
        return None
    present = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    try:
        checked = torch.device(device)
        if checked.type in present and not present[checked.type]():
            raise RuntimeError(f"torch finds no {checked.type.upper()} device on this machine")
        torch.empty(0, device=checked)  # fails here, not deep inside training, when the device is absent
    except (RuntimeError, AssertionError, TypeError) as error:
        reason = str(error).split(". ")[0][:200]
        raise ValueError(
            f"{name}={device!r} cannot be used here ({reason}); pass {name}=None for the automatic "
            f"choice (CUDA when present, else the CPU) or {name}='cpu'"
        ) from None
    return checked


def model_device(model):
    """Where the model's parameters (or buffers) live; the CPU for a model with neither (a fixed baseline)."""
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return torch.device("cpu") if tensor is None else tensor.device


def describe_device(device):
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"
