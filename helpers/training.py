"""Training by maximum likelihood: `train_epochs`, `fit` (with early stopping on validation data) and
what they need around them."""

import contextlib
import copy
import itertools
import math
import random
import sys
import weakref
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import torch
from tqdm import tqdm

from ._checks import check_integer, check_positive, check_seed, values_checked
from .devices import check_device, describe_device, model_device, training_device


def seed(value=0):
    """Seed Python, numpy and torch (all devices) so that a run can be repeated."""
    value = check_seed(value)
    random.seed(value)
    np.random.seed(value)
    torch.manual_seed(value)


class BatchLoader:
    """Mini-batches of an in-memory array, as tensors, reshuffled every epoch when `shuffle`.

    Slices one tensor per batch instead of collating item by item as a DataLoader does, so the
    data path costs next to nothing beside the model. `len()` is the number of batches. The order of
    epoch e depends only on (seed, e), and `epoch` counts the epochs served, so a run resumed at
    epoch e (set `loader.epoch = e`) sees the batches an uninterrupted run would have.
    """

    def __init__(self, data, batch_size=128, shuffle=False, seed=0):
        # a tensor stays on its device (a CUDA tensor cannot become a numpy array); numpy's reversed
        # views (np.flip) are copied, since torch takes no negative strides
        self.data = (
            data.detach() if torch.is_tensor(data) else torch.as_tensor(np.require(data, requirements="C"))
        )
        if self.data.dim() == 0 or len(self.data) == 0:
            raise ValueError(
                f"BatchLoader got no examples (data of shape {tuple(self.data.shape)}); pass an array "
                f"with at least one example along its first dimension"
            )
        self.batch_size = check_integer(batch_size, "batch_size", 1, "examples per batch")
        self.shuffle, self.seed, self.epoch = shuffle, check_seed(seed), 0

    def __len__(self):
        return -(-len(self.data) // self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + 1_000_003 * self.epoch)
        order = torch.randperm(len(self.data), generator=generator) if self.shuffle else None
        self.epoch += 1
        for start in range(0, len(self.data), self.batch_size):
            stop = start + self.batch_size
            yield self.data[order[start:stop]] if self.shuffle else self.data[start:stop]


class TrainingResult(NamedTuple):
    train_losses: np.ndarray  # one per batch, nats per dimension
    valid_losses: (
        np.ndarray
    )  # one before training, then one per epoch, nats per dimension (empty without validation)
    best_epoch: int = None  # `fit`: the epoch whose state was kept (the last one without early stopping)
    test_loss: float = None  # `fit`: the test loss of the reported model, evaluated once


class TrainingDiverged(FloatingPointError):
    """The training (or validation) loss became NaN or infinite. The model is back in the last state
    whose loss was seen finite; `train_losses` and `valid_losses` hold the losses recorded until then.
    `batch` is the batch of `epoch` whose loss was bad (None when the validation loss was)."""

    def __init__(self, message, train_losses, valid_losses, epoch, batch=None):
        super().__init__(message)
        self.train_losses, self.valid_losses = np.array(train_losses), np.array(valid_losses)
        self.epoch, self.batch = epoch, batch


def _check_loader(loader, name):
    """Refuse what is not a loader of batches: a tensor passed as is would be iterated one example at a time."""
    if loader is None:
        return
    if torch.is_tensor(loader) or isinstance(loader, np.ndarray):
        raise TypeError(
            f"{name} must be a loader of batches, got the data itself ({type(loader).__name__} of shape "
            f"{tuple(loader.shape)}): wrap it in BatchLoader(x, batch_size=128)"
        )
    if not (hasattr(loader, "__len__") and hasattr(loader, "__iter__")):
        raise TypeError(
            f"{name} must be a loader of batches with a len(), such as BatchLoader(x, batch_size=128), "
            f"got {type(loader).__name__}"
        )
    if len(loader) == 0:
        raise ValueError(f"{name} is empty: it yields no batches")


def _batches(loader, device, model, name="loader"):
    """(batch on `device`, whether its values were checked) for each batch of the loader (`name`, for errors).

    A batch going from the CPU to another device is checked there first by `model.check_input`
    (when the model has one), so that the model's own check need not read the values back from the
    device (see `values_checked`). Batches already on the device are left to the model's check.
    """
    for batch in loader:
        if isinstance(batch, (list, tuple)):  # a DataLoader over a TensorDataset yields 1-tuples
            batch = batch[0]
        if not torch.is_tensor(batch):
            raise TypeError(
                f"{name} yielded a batch of type {type(batch).__name__}; each batch must be a tensor (or a "
                f"1-tuple of one, as a DataLoader over a TensorDataset yields): pass "
                f"BatchLoader(x, batch_size=128) for an array x"
            )
        checked = (
            device.type != "cpu"
            and batch.device.type == "cpu"
            and callable(getattr(model, "check_input", None))
        )
        if checked:
            model.check_input(batch)
        yield batch.to(device, non_blocking=True), checked


def _loss(model, batch, checked):
    with values_checked() if checked else contextlib.nullcontext():
        return model.loss(batch)


def evaluate(model, loader, device=None):
    """Mean of `model.loss` over the whole loader in eval mode, weighted by batch size (nats per dimension).
    Runs on `device`, by default where the model's parameters are (the CPU for a model without any)."""
    _check_loader(loader, "loader")
    device = check_device(device) or model_device(model)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch, checked in _batches(loader, device, model):
            total += _loss(model, batch, checked).item() * len(batch)
            count += len(batch)
    if count == 0:
        raise ValueError("the evaluation loader yielded no examples")
    return total / count


def _check_lr(lr, model):
    """lr for a fresh Adam: positive, finite, and small enough that Adam's first step, lr / (1 - beta1)
    = 10 lr, is a number in the parameters' dtype (else torch fails with an overflow of its own)."""
    lr = check_positive(lr, "lr", "the learning rate")
    dtypes = [p.dtype for p in model.parameters() if p.dtype.is_floating_point] or [torch.float32]
    largest = min(torch.finfo(dtype).max for dtype in dtypes) / 10
    if lr > largest:
        raise ValueError(
            f"lr={lr:g} is too large: Adam's first step, 10 lr, would overflow the parameters' "
            f"{min(dtypes, key=lambda t: torch.finfo(t).max)} (lr must be at most {largest:.3g}; "
            f"useful learning rates are below 1)"
        )
    return lr


def _check_optimizer(optimizer, model):
    """Refuse what is not an optimizer, and one built for another model: its steps would leave `model` as it
    was while the losses were reported as training (a notebook cell re-run with the old optimizer kept)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer built on this model's parameters, got "
            f"{type(optimizer).__name__} {optimizer!r}; for a fresh Adam, pass lr= instead"
        )
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    parameters = list(model.parameters())
    if not any(id(p) in held for p in parameters):
        raise ValueError(
            f"optimizer ({type(optimizer).__name__}) holds {len(held)} tensors, none of them among the "
            f"{len(parameters)} parameters of this {type(model).__name__}: it was built for another "
            f"model (a re-run cell?); build it on this one, e.g. "
            f"torch.optim.{type(optimizer).__name__}(model.parameters(), lr=...)"
        )


class EarlyStopping:
    """The lowest validation loss so far and its epoch; training stops once `patience` epochs have passed
    without a lower one (never, with patience None). `fit` and experiments/made_mnist.py both use it, the
    latter starting from a checkpoint's best loss and epoch."""

    def __init__(self, patience=None, best_loss=math.inf, best_epoch=0):
        if patience is not None:
            patience = check_integer(patience, "patience", 1, "epochs without improvement before stopping")
        self.patience, self.best_loss, self.best_epoch = patience, best_loss, best_epoch

    def update(self, epoch, loss):
        """Record `epoch`'s validation loss; True when it is lower than every one before."""
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, epoch
            return True
        return False

    def should_stop(self, epoch):
        return self.patience is not None and epoch - self.best_epoch >= self.patience


class Rollback:
    """The last state of a model and its optimizer whose loss was seen finite, to go back to on a divergence.

    `snapshot()` copies the present state; `keep(state, epoch)` marks a copy as seen finite (the state after
    `epoch`, 0 before training); `fail` puts it back and raises TrainingDiverged with the losses recorded so far
    (the lists `train_losses` and `valid_losses` the training appends to) and what to try (`hint`)."""

    def __init__(self, model, optimizer, hint, train_losses, valid_losses):
        self.model, self.optimizer, self.hint = model, optimizer, hint
        self.train_losses, self.valid_losses = train_losses, valid_losses
        self.state, self.epoch = self.snapshot(), 0

    def snapshot(self):
        return copy.deepcopy(self.model.state_dict()), copy.deepcopy(self.optimizer.state_dict())

    def keep(self, state, epoch):
        self.state, self.epoch = state, epoch

    def fail(self, what, epoch, batch=None, epoch_losses=()):
        """Restore the kept state and raise; `epoch_losses`: the finite losses of the failing epoch, before `batch`."""
        self.model.load_state_dict(self.state[0])
        self.optimizer.load_state_dict(self.state[1])
        restored = f"after epoch {self.epoch}" if self.epoch else "before training"
        raise TrainingDiverged(
            f"{what}; {self.hint} (lr={self.optimizer.param_groups[0]['lr']}). The model is restored to its state "
            f"{restored}, the last one whose loss was seen finite; the losses so far are on this exception "
            f"(.train_losses, .valid_losses).",
            self.train_losses + list(epoch_losses),
            self.valid_losses,
            epoch,
            batch,
        )


def _check_training(model, epochs, lr, optimizer, grad_clip, train_loader, valid_loader):
    """The arguments of `train_epochs`, checked: the epochs, the optimizer (a fresh Adam for lr) and grad_clip."""
    if not callable(getattr(model, "loss", None)):
        raise TypeError(
            f"{type(model).__name__} has no loss(batch) method; train_epochs minimizes "
            f"model.loss(batch), the mean NLL of a batch"
        )
    if next(model.parameters(), None) is None:
        raise ValueError(
            f"{type(model).__name__} has no parameters: there is nothing to train; "
            f"evaluate(model, loader) gives its loss"
        )
    epochs = check_integer(epochs, "epochs", 1, "passes over the training data")
    if (optimizer is None) == (lr is None):
        raise ValueError(
            "pass either lr (for a fresh Adam) or optimizer (one of your own, with its own learning "
            "rate), not both"
            if optimizer is not None
            else "pass lr, the learning rate of Adam"
        )
    if grad_clip is not None:
        grad_clip = check_positive(grad_clip, "grad_clip", "the largest gradient norm; None for no clipping")
    _check_loader(train_loader, "train_loader")
    _check_loader(valid_loader, "valid_loader")
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=_check_lr(lr, model))
    else:
        _check_optimizer(optimizer, model)
    return epochs, optimizer, grad_clip


def train_epochs(
    model,
    train_loader,
    valid_loader,
    epochs,
    lr=None,
    grad_clip=None,
    device=None,
    progress=True,
    optimizer=None,
    on_epoch_end=None,
):
    """Fit `model` by Adam (learning rate `lr`) on the mean NLL `model.loss(batch)`.

    Returns `TrainingResult(train_losses, valid_losses)`: the training loss of every batch, and the
    loss on `valid_loader` before training and after each epoch (nats per dimension); with
    `valid_loader=None` nothing is evaluated. The loaders yield batches (a `BatchLoader`, a list of
    tensors, a DataLoader), not the data itself. After each update it calls `model.next_mask()` when
    the model has one (MADE's mask cycle).

    Runs on `device`; without one, on CUDA when present, except that models of fewer than
    SMALL_MODEL_PARAMETERS parameters stay on the CPU (said on the progress line). The model is moved
    there in place (`model.to(device)`): afterwards its parameters live on that device, so read them
    with `.cpu()` (e.g. `model.logits.detach().cpu().numpy()`).

    A NaN or infinite training loss raises TrainingDiverged naming the epoch and the batch, with the
    model (and optimizer) restored and the losses so far on the exception. The state restored is the
    last one whose loss was seen finite: the state at the start of an epoch counts once the loss of
    that epoch's first batch (computed on it) was finite, the state at the end of one once its
    validation loss was. The update of an epoch's last batch is only judged by the next loss, so with
    one batch per epoch (full-batch training) a divergence goes back two epochs, not one. Training
    ends with a check of the final state: its validation loss or, without validation data, its loss
    on the last training batch. The training loss is checked at every batch on the CPU, and every 32
    batches on a GPU, where a check every batch would stall the device. A NaN or infinite validation
    loss raises TrainingDiverged too, except before training (a plain FloatingPointError: the model
    gives the validation data zero probability from the start).

    For long, resumable runs: `optimizer`, built on this model's parameters, replaces the fresh Adam
    (pass it instead of `lr`), so its state can be restored from a checkpoint; `on_epoch_end(epoch,
    valid_loss)` is called after each epoch (1-based) and stops training early by returning True.
    """
    epochs, optimizer, grad_clip = _check_training(
        model, epochs, lr, optimizer, grad_clip, train_loader, valid_loader
    )
    device, why = (check_device(device), None) if device is not None else training_device(model)
    model.to(device)
    if progress:
        print(
            f"Training {type(model).__name__} on {describe_device(device)} for {epochs} epochs"
            + (f" ({why})" if why else "")
        )
    hint = "lower the learning rate" + (
        " or pass grad_clip" if grad_clip is None else f" or clip harder than {grad_clip}"
    )
    train_losses, valid_losses = [], []
    rollback = Rollback(model, optimizer, hint, train_losses, valid_losses)
    _validate(model, valid_loader, device, 0, rollback)
    bar = tqdm(
        total=epochs * len(train_loader),
        disable=not progress,
        file=sys.stdout,
        mininterval=1.0,
        unit="batch",
        dynamic_ncols=True,
    )
    with bar:
        for epoch in range(1, epochs + 1):
            losses, last = _train_one_epoch(
                model, train_loader, device, optimizer, grad_clip, epoch, rollback, bar
            )
            train_losses.extend(losses.tolist())
            _validate(model, valid_loader, device, epoch, rollback)
            valid_text = f", valid {valid_losses[-1]:.4f}" if valid_losses else ""
            bar.set_postfix_str(f"epoch {epoch}/{epochs}, train {losses.mean():.4f}{valid_text} nats/dim")
            if on_epoch_end is not None and on_epoch_end(epoch, valid_losses[-1] if valid_losses else None):
                break
        if valid_loader is None:  # the last update is judged by nothing else but the final state's loss
            _check_final_state(model, last, epoch, rollback)
    return TrainingResult(np.array(train_losses), np.array(valid_losses))


def _validate(model, loader, device, epoch, rollback):
    """Append the validation loss after `epoch` (0: before training) to the run's; a state whose validation loss
    is finite is kept for roll-backs. No loader: nothing to do."""
    if loader is None:
        return
    loss = evaluate(model, loader, device)
    if not math.isfinite(loss):
        if epoch == 0:
            raise FloatingPointError(
                f"the validation loss is {loss} after epoch 0, before "
                f"training: the model gives some validation example zero probability"
            )
        rollback.fail(f"the validation loss is {loss} after epoch {epoch}", epoch)
    rollback.valid_losses.append(loss)
    if epoch > 0:
        rollback.keep(rollback.snapshot(), epoch)


def _check_final_state(model, last, epoch, rollback):
    """Without validation data: the final state's loss on the last training batch `last` (batch, checked)."""
    model.eval()
    with torch.no_grad():
        final_loss = float(_loss(model, *last))
    model.train()
    if not math.isfinite(final_loss):
        rollback.fail(
            f"the loss of the final state (on the last training batch) is {final_loss} after epoch {epoch}",
            epoch,
        )


def _train_one_epoch(model, loader, device, optimizer, grad_clip, epoch, rollback, bar):
    """One pass over the loader, an update per batch; returns the batches' losses (a numpy array) and the last
    (batch, checked). Checks the losses every batch on the CPU, every 32 on a GPU (see `train_epochs`)."""
    check_every = 1 if device.type == "cpu" else 32
    # the state at the epoch's start, judged by the loss of its first batch
    start = rollback.state if rollback.epoch == epoch - 1 else rollback.snapshot()
    model.train()
    losses, checked = [], 0  # kept on the device; those before `checked` are finite
    for batch_number, (batch, was_checked) in enumerate(_batches(loader, device, model, "train_loader"), 1):
        loss = _loss(model, batch, was_checked)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if callable(getattr(model, "next_mask", None)):  # MADE's mask cycle: the next mask after each update
            model.next_mask()
        losses.append(loss.detach())
        bar.update()
        if batch_number - checked < check_every and batch_number < len(loader):
            continue
        bad = torch.nonzero(~torch.isfinite(torch.stack(losses[checked:]))).flatten()
        if len(bad):
            first_bad = checked + int(bad[0]) + 1
            if first_bad > 1:
                rollback.keep(start, epoch - 1)
            rollback.fail(
                f"the training loss became {float(losses[first_bad - 1])} at epoch {epoch}, batch {first_bad}",
                epoch,
                first_bad,
                [float(v) for v in losses[: first_bad - 1]],
            )
        rollback.keep(start, epoch - 1)
        checked = batch_number
    return torch.stack(losses).cpu().numpy(), (batch, was_checked)


def _loader(data, split, batch_size, **kwargs):
    if data is None or len(data) == 0:
        raise ValueError(f"dataset.{split} is empty: fit needs examples in the train, valid and test splits")
    return BatchLoader(data, batch_size, **kwargs)


def fit(
    model,
    dataset,
    epochs,
    lr,
    batch_size=128,
    grad_clip=None,
    loader_seed=0,
    patience=None,
    refit=False,
    test=True,
    verbose=True,
):
    """Train on `dataset.train`, select on `dataset.valid`, and report the test loss once.

    The validation loss is computed after every epoch. With `patience`, training stops when it has not
    improved for that many epochs, and the model is put back in its best state (early stopping);
    without, all epochs run and the last state is kept. With `refit`, the model then goes back to its
    initial state and trains on train + valid together for the selected number of epochs, and that
    is the model reported. Then, unless `test=False` (for choosing settings, see `select`), the test
    split is evaluated once and the course's `Final Test Loss: X.XXXX` line is printed with its unit
    (for images also in nats per image). Returns a TrainingResult: the curves of the selection run,
    the selected epoch and the test loss.

    Trains where `train_epochs` does (CUDA when present, the CPU for small models) and moves `model`
    there in place: read its parameters afterwards with `.cpu()`.
    """
    epochs = check_integer(epochs, "epochs", 1, "passes over the training data")
    batch_size = check_integer(batch_size, "batch_size", 1, "examples per batch")
    if patience is not None:
        patience = check_integer(patience, "patience", 1, "epochs without improvement before stopping")
    say = print if verbose else (lambda *args: None)
    train = _loader(dataset.train, "train", batch_size, shuffle=True, seed=loader_seed)
    valid = _loader(dataset.valid, "valid", max(batch_size, 1000))
    test_loader = _loader(dataset.test, "test", max(batch_size, 1000)) if test else None
    initial = copy.deepcopy(model.state_dict()) if refit else None
    stopping, best_state = EarlyStopping(patience), {}

    def keep_best(epoch, valid_loss):
        if stopping.update(epoch, valid_loss) and patience is not None:
            best_state["model"] = copy.deepcopy(model.state_dict())
        return stopping.should_stop(epoch)

    result = train_epochs(
        model, train, valid, epochs, lr, grad_clip=grad_clip, progress=verbose, on_epoch_end=keep_best
    )
    trained = len(result.valid_losses) - 1
    if patience is None:
        best_epoch = trained
        say(
            f"Validation loss {result.valid_losses[-1]:.4f} nats per dimension after {trained} epochs "
            f"(lowest {stopping.best_loss:.4f}, at epoch {stopping.best_epoch})"
        )
    else:
        best_epoch = stopping.best_epoch
        model.load_state_dict(best_state["model"])
        stop = (
            f"stopped after {trained}, {patience} without improvement"
            if trained < epochs
            else f"ran all {epochs}"
        )
        say(
            f"Best validation loss {stopping.best_loss:.4f} nats per dimension at epoch {best_epoch} ({stop}); "
            f"kept that state"
        )
    if refit:
        model.load_state_dict(initial)
        both = np.concatenate([dataset.train, dataset.valid])
        train_epochs(
            model,
            BatchLoader(both, batch_size, shuffle=True, seed=loader_seed),
            None,
            best_epoch,
            lr,
            grad_clip=grad_clip,
            progress=verbose,
        )
        say(
            f"Retrained from the same initial state on train + valid ({len(both)} examples) for the selected "
            f"{best_epoch} epochs"
        )
    result = result._replace(best_epoch=best_epoch)
    if not test:
        return result
    test_loss = evaluate(model, test_loader)
    if not math.isfinite(test_loss):
        raise FloatingPointError(
            f"the test loss is {test_loss}: the model gives some test example zero probability"
        )
    per_image = (
        f" ({test_loss * np.prod(dataset.shape):.2f} nats per image)" if len(dataset.shape) == 2 else ""
    )
    print(f"Final Test Loss: {test_loss:.4f} nats per dimension{per_image}")
    return result._replace(test_loss=test_loss)


def select(make_model, dataset, grid, **fit_args):
    """Choose settings on the validation split, never looking at the test split.

    For every combination of the values in `grid` ({fit argument: [values]}, e.g. {"lr": [0.01, 0.1]}),
    seeds everything with `seed(0)`, trains a fresh `make_model()` with `fit(..., test=False)` and the
    other `fit_args`, and prints its best validation loss. Returns the best combination as a dict of
    fit arguments, ready for `fit(make_model(), dataset, **fit_args, **best)`. A setting whose training
    diverges (TrainingDiverged) is reported as such and counts as infinitely bad.
    """
    if not isinstance(grid, dict):
        raise TypeError(
            f"grid must be a dict of {{fit argument: [values]}}, e.g. {{'lr': [0.01, 0.1]}}, got "
            f"{type(grid).__name__}"
        )
    for name, values in grid.items():
        if isinstance(values, str):  # iterated, it would try each character as a value
            raise TypeError(
                f"grid[{name!r}] must be a list of the values to try, got the string {values!r}; write "
                f"the values themselves, e.g. {{{name!r}: [{values}]}}"
            )
        if not isinstance(values, Iterable):
            raise TypeError(
                f"grid[{name!r}] must be a list of the values to try, got {values!r}; write "
                f"{{{name!r}: [{values!r}]}} for a single value"
            )
    names = list(grid)
    combinations = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
    if not combinations:
        raise ValueError("grid must give at least one value for each setting, e.g. {'lr': [0.01, 0.1]}")
    scores, made = [], weakref.WeakSet()  # the models make_model returned: each setting needs a fresh one
    for setting in combinations:
        seed(0)
        text = ", ".join(f"{k}={v}" for k, v in setting.items())
        model = make_model()
        if model in made:
            raise ValueError(
                f"make_model returned the same {type(model).__name__} it returned for an earlier setting, "
                f"so {text} would start from the weights that setting left: build a fresh model inside "
                f"it, e.g. select(lambda: MADE(...), ...), not select(lambda: model, ...)"
            )
        made.add(model)
        try:
            result = fit(model, dataset, **fit_args, **setting, test=False, verbose=False)
        except TrainingDiverged as error:  # one bad setting must not cost the completed fits
            scores.append(math.inf)
            print(
                f"{text}: diverged at epoch {error.epoch}, counted as infinitely bad ({str(error).split(';')[0]})"
            )
            continue
        scores.append(result.valid_losses[result.best_epoch])
        print(f"{text}: validation loss {scores[-1]:.4f} nats per dimension at epoch {result.best_epoch}")
    if all(math.isinf(score) for score in scores):
        raise TrainingDiverged(
            "every setting of the grid diverged; try smaller learning rates or pass grad_clip", [], [], None
        )
    best = combinations[int(np.argmin(scores))]
    print("chosen on validation: " + ", ".join(f"{k}={v}" for k, v in best.items()))
    return best
