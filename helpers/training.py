"""Training by maximum likelihood: `train_epochs` and what it needs around it."""
import random
import sys
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm


def seed(value=0):
    """Seed Python, numpy and torch (all devices) so that a run can be repeated."""
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


def default_device():
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(device):
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


class BatchLoader:
    """Mini-batches of an in-memory array, as tensors, reshuffled every epoch when `shuffle`.

    Slices one tensor per batch instead of collating item by item as a DataLoader does, so the
    data path costs next to nothing beside the model. `len()` is the number of batches.
    """

    def __init__(self, data, batch_size=128, shuffle=False, seed=0):
        self.data = torch.as_tensor(np.asarray(data))
        if len(self.data) == 0:
            raise ValueError("BatchLoader got an empty dataset; pass at least one example")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return -(-len(self.data) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.data), generator=self.generator) if self.shuffle else None
        for start in range(0, len(self.data), self.batch_size):
            stop = start + self.batch_size
            yield self.data[order[start:stop]] if self.shuffle else self.data[start:stop]


class TrainingResult(NamedTuple):
    train_losses: np.ndarray  # one per batch, nats per dimension
    test_losses: np.ndarray  # one before training, then one per epoch, nats per dimension


def _batches(loader, device):
    for batch in loader:
        if isinstance(batch, (list, tuple)):  # a DataLoader over a TensorDataset yields 1-tuples
            batch = batch[0]
        yield batch.to(device, non_blocking=True)


def evaluate(model, loader, device=None):
    """Mean of `model.loss` over the whole loader, weighted by batch size (nats per dimension)."""
    device = device or next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in _batches(loader, device):
            total += model.loss(batch).item() * len(batch)
            count += len(batch)
    if count == 0:
        raise ValueError("the test loader yielded no examples")
    return total / count


def train_epochs(model, train_loader, test_loader, epochs, lr, grad_clip=None, device=None, progress=True,
                 optimizer=None, on_epoch_end=None):
    """Fit `model` by Adam on the mean NLL `model.loss(batch)`; evaluate on the test loader every epoch.

    Returns `TrainingResult(train_losses, test_losses)`: the training loss of every batch, and the
    test loss before training and after each epoch, all in nats per dimension. Runs on `device`,
    else CUDA when present, else the CPU. Stops with FloatingPointError naming the epoch and the
    batch if the loss becomes NaN or infinite.

    For long, resumable runs: `optimizer` replaces the fresh Adam (and `lr`), so its state can be
    restored from a checkpoint; `on_epoch_end(epoch, test_loss)` is called after each epoch
    (1-based) and stops training early by returning True.
    """
    if not callable(getattr(model, "loss", None)):
        raise TypeError(f"{type(model).__name__} has no loss(batch) method; train_epochs minimizes "
                        f"model.loss(batch), the mean NLL of a batch")
    for name, loader in (("train_loader", train_loader), ("test_loader", test_loader)):
        if len(loader) == 0:
            raise ValueError(f"{name} is empty: it yields no batches")
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    if progress:
        print(f"Training {type(model).__name__} on {describe_device(device)} for {epochs} epochs")

    test_losses = [evaluate(model, test_loader, device)]
    train_losses = []
    bar = tqdm(total=epochs * len(train_loader), disable=not progress, file=sys.stdout,
               mininterval=1.0, unit="batch", dynamic_ncols=True)
    for epoch in range(epochs):
        model.train()
        epoch_losses = []  # kept on the device: one transfer per epoch, not per batch
        for batch in _batches(train_loader, device):
            loss = model.loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            optimizer.step()
            epoch_losses.append(loss.detach())
            bar.update()
        epoch_losses = torch.stack(epoch_losses).cpu().numpy()
        bad = np.flatnonzero(~np.isfinite(epoch_losses))
        if bad.size:
            bar.close()
            raise FloatingPointError(
                f"the training loss became {epoch_losses[bad[0]]} at epoch {epoch + 1}, batch {bad[0] + 1}; "
                f"lower the learning rate (lr={lr}) or pass grad_clip")
        train_losses.extend(epoch_losses)
        test_losses.append(evaluate(model, test_loader, device))
        bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}, train {epoch_losses.mean():.4f}, "
                            f"test {test_losses[-1]:.4f} nats/dim")
        if on_epoch_end is not None and on_epoch_end(epoch + 1, test_losses[-1]):
            break
    bar.close()
    return TrainingResult(np.array(train_losses), np.array(test_losses))


def fit(model, dataset, epochs, lr, batch_size=128, grad_clip=None, loader_seed=0):
    """Train `model` on `dataset.train`, test on `dataset.test`, and print the final test loss.

    The printed line keeps the course's format, `Final Test Loss: X.XXXX`, with its unit, and for
    images the same figure in nats per image. Returns train_epochs' TrainingResult.
    """
    result = train_epochs(model, BatchLoader(dataset.train, batch_size, shuffle=True, seed=loader_seed),
                          BatchLoader(dataset.test, max(batch_size, 1000)), epochs, lr, grad_clip=grad_clip)
    final = result.test_losses[-1]
    per_image = f" ({final * np.prod(dataset.shape):.2f} nats per image)" if len(dataset.shape) == 2 else ""
    print(f"Final Test Loss: {final:.4f} nats per dimension{per_image}")
    return result
