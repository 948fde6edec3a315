import numpy as np
import pytest
import torch
from torch import nn

from helpers.data import Dataset
from helpers.training import BatchLoader, TrainingDiverged, evaluate, fit, seed, select, train_epochs


class Categorical(nn.Module):
    """The smallest likelihood model: free logits over d values."""

    def __init__(self, d):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(d))

    def loss(self, x):
        return -torch.log_softmax(self.logits, 0)[x].mean()


class NaNAfter(Categorical):
    """Its loss becomes NaN at the given (1-based) call."""

    def __init__(self, d, bad_call):
        super().__init__(d)
        self.calls, self.bad_call = 0, bad_call

    def loss(self, x):
        self.calls += self.training
        loss = super().loss(x)
        return loss * float("nan") if self.training and self.calls == self.bad_call else loss


def _data(n=1000, d=5):
    return np.random.RandomState(0).choice(d, size=n, p=[0.5, 0.2, 0.15, 0.1, 0.05])


def test_train_epochs_fits_and_returns_the_documented_shapes():
    x = _data()
    train, test = BatchLoader(x[:700], 64, shuffle=True), BatchLoader(x[700:], 64)
    model = Categorical(5)
    train_losses, test_losses, *_ = train_epochs(model, train, test, epochs=4, lr=0.1, progress=False)
    assert train_losses.shape == (4 * len(train),) and test_losses.shape == (5,)
    assert test_losses[0] == pytest.approx(np.log(5), abs=1e-6)  # uniform before training
    frequencies = np.bincount(x[:700], minlength=5) / 700
    entropy_bound = -(np.bincount(x[700:], minlength=5) / 300 * np.log(frequencies)).sum()
    assert test_losses[-1] < test_losses[0] - 0.2
    assert test_losses[-1] == pytest.approx(entropy_bound, abs=0.02)


def test_test_loss_is_averaged_over_examples_not_batches():
    x = np.array([0] * 9 + [1])  # batches of 4, 4, 2: unequal sizes
    model = Categorical(2)
    with torch.no_grad():
        model.logits[:] = torch.tensor([1.0, -1.0])
    expected = -torch.log_softmax(model.logits, 0)[torch.as_tensor(x)].mean().item()
    assert evaluate(model, BatchLoader(x, 4)) == pytest.approx(expected, rel=1e-6)


def test_seed_makes_runs_repeatable():
    runs = []
    for _ in range(2):
        seed(3)
        x = _data()
        model = Categorical(5)
        nn.init.normal_(model.logits)
        runs.append(train_epochs(model, BatchLoader(x, 50, shuffle=True, seed=torch.randint(100, ()).item()),
                                 BatchLoader(x, 500), epochs=2, lr=0.05, progress=False))
    np.testing.assert_array_equal(runs[0].train_losses, runs[1].train_losses)


def test_callback_stops_early_and_optimizer_state_carries_over():
    x = _data()
    model = Categorical(5)
    seen = []
    result = train_epochs(model, BatchLoader(x, 100), BatchLoader(x, 500), epochs=10, lr=0.05, progress=False,
                          on_epoch_end=lambda epoch, loss: seen.append((epoch, loss)) or epoch == 3)
    assert [e for e, _ in seen] == [1, 2, 3] and len(result.valid_losses) == 4
    assert [loss for _, loss in seen] == list(result.valid_losses[1:])
    # Resuming with the same optimizer continues Adam's moments: the same as one uninterrupted run.
    seed(0)
    a, b = Categorical(5), Categorical(5)
    train_epochs(a, BatchLoader(x, 100), BatchLoader(x, 500), epochs=4, lr=0.05, progress=False)
    optimizer = torch.optim.Adam(b.parameters(), lr=0.05)
    for _ in range(2):
        train_epochs(b, BatchLoader(x, 100), BatchLoader(x, 500), epochs=2, lr=None, progress=False, optimizer=optimizer)
    torch.testing.assert_close(a.logits, b.logits)


def test_nan_loss_stops_at_its_batch_restores_the_last_good_epoch_and_keeps_the_losses():
    x = _data(100)
    model = NaNAfter(5, bad_call=10 + 3)                          # epoch 2, batch 3
    with pytest.raises(TrainingDiverged, match="epoch 2, batch 3; lower the learning rate or pass grad_clip") as err:
        train_epochs(model, BatchLoader(x, 10), BatchLoader(x, 10), 3, 0.01, progress=False)
    assert model.calls == 13, "training went on after the bad batch"
    assert torch.isfinite(model.logits).all()
    after_epoch_1 = NaNAfter(5, bad_call=0)
    train_epochs(after_epoch_1, BatchLoader(x, 10), BatchLoader(x, 10), 1, 0.01, progress=False)
    torch.testing.assert_close(model.logits, after_epoch_1.logits)
    assert len(err.value.train_losses) == 12 and np.isfinite(err.value.train_losses).all()
    assert len(err.value.valid_losses) == 2 and (err.value.epoch, err.value.batch) == (2, 3)
    with pytest.raises(TrainingDiverged, match="or clip harder than 1.0"):
        train_epochs(NaNAfter(5, bad_call=2), BatchLoader(x, 10), None, 1, 0.01, grad_clip=1.0, progress=False)


class NaNValid(Categorical):
    def loss(self, x):
        return super().loss(x) * (float("nan") if not self.training else 1.0)


def test_nan_validation_loss_raises():
    loader = BatchLoader(_data(20), 10)
    with pytest.raises(FloatingPointError, match="validation loss is nan after epoch 0"):
        train_epochs(NaNValid(5), loader, loader, 1, 0.01, progress=False)


def _dataset(n=1000, valid=None, test=None):
    x = _data(n)
    return Dataset("toy", train=x[:600], valid=x[600:800] if valid is None else valid,
                   test=x[800:] if test is None else test, d=5, shape=())


def test_fit_raises_on_a_nan_test_loss():
    class NaNTest(Categorical):  # finite in training and validation, NaN on the test split (values >= 3)
        def loss(self, x):
            return super().loss(x) * (float("nan") if (x >= 3).any() and not self.training else 1.0)
    ds = _dataset(valid=np.zeros(10, dtype=int), test=np.full(10, 4))
    with pytest.raises(FloatingPointError, match="the test loss is nan"):
        fit(NaNTest(5), ds, epochs=1, lr=0.1)


@pytest.mark.parametrize("kwargs,match", [
    (dict(grad_clip=0), "grad_clip .* positive finite number, got 0"),
    (dict(grad_clip=-1.0), "grad_clip .* positive finite number, got -1.0"),
    (dict(grad_clip=float("inf")), "grad_clip"),
    (dict(grad_clip="1"), "grad_clip"),
    (dict(epochs=2.0), "epochs .* must be an integer >= 1, got 2.0"),
    (dict(epochs="3"), "epochs"),
    (dict(epochs=None), "epochs"),
    (dict(epochs=0), "epochs"),
    (dict(lr=None), "pass lr"),
    (dict(lr=-0.1), "lr .* positive finite number"),
    (dict(optimizer="adam"), "pass either lr .* or optimizer"),
])
def test_bad_training_arguments_are_named(kwargs, match):
    loader = BatchLoader(_data(10), 5)
    args = {**dict(epochs=1, lr=0.01), **kwargs}
    with pytest.raises(ValueError, match=match):
        train_epochs(Categorical(5), loader, loader, progress=False, **args)


@pytest.mark.parametrize("batch_size", [2.5, "10", None, 0, True])
def test_bad_batch_sizes_are_named(batch_size):
    with pytest.raises(ValueError, match="batch_size .* must be an integer >= 1"):
        BatchLoader(_data(10), batch_size)
    with pytest.raises(ValueError, match="batch_size"):
        fit(Categorical(5), _dataset(), epochs=1, lr=0.1, batch_size=batch_size)


@pytest.mark.parametrize("split", ["train", "valid", "test"])
def test_fit_names_an_empty_split(split):
    ds = _dataset()
    setattr(ds, split, ds.train[:0])
    with pytest.raises(ValueError, match=f"dataset.{split} is empty"):
        fit(Categorical(5), ds, epochs=1, lr=0.1)


class Overfits(nn.Module):
    """Its validation loss after n training steps is (n - 3)^2: best after step 3, worse after."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.register_buffer("steps", torch.zeros(()))
        self.evaluations = 0

    def loss(self, x):
        if self.training:
            self.steps += 1
            return self.weight * 0 + 1.0
        self.evaluations += 1
        return (self.steps - 3) ** 2 + self.weight * 0


def test_fit_stops_early_keeps_the_best_state_and_tests_once(capsys):
    model = Overfits()
    result = fit(model, _dataset(), epochs=100, lr=0.1, batch_size=600, patience=2)   # one batch per epoch
    assert "Best validation loss 0.0000 nats per dimension at epoch 3 (stopped after 5, 2 without improvement)" \
        in capsys.readouterr().out
    assert result.best_epoch == 3 and result.valid_losses.tolist() == [9, 4, 1, 0, 1, 4]
    assert model.steps == 3, "the best state is kept"
    assert result.test_loss == 0
    assert model.evaluations == len(result.valid_losses) + 1, "validation every epoch, then the test split once"


def test_fit_refits_on_train_and_valid_for_the_selected_epochs(capsys):
    ds = _dataset()
    seed(0)
    refit = Categorical(5)
    result = fit(refit, ds, epochs=30, lr=0.2, batch_size=100, patience=2, refit=True)
    assert "Retrained from the same initial state on train + valid (800 examples)" in capsys.readouterr().out
    seed(0)
    by_hand = Categorical(5)
    both = np.concatenate([ds.train, ds.valid])
    train_epochs(by_hand, BatchLoader(both, 100, shuffle=True), None, result.best_epoch, 0.2, progress=False)
    torch.testing.assert_close(refit.logits, by_hand.logits)


def test_batch_loader_covers_every_example_once_and_reshuffles():
    x = np.arange(103)
    loader = BatchLoader(x, 10, shuffle=True)
    epochs = [torch.cat(list(loader)).numpy() for _ in range(2)]
    assert len(loader) == 11
    for seen in epochs:
        np.testing.assert_array_equal(np.sort(seen), x)
    assert not np.array_equal(epochs[0], epochs[1])
    np.testing.assert_array_equal(torch.cat(list(BatchLoader(x, 10))).numpy(), x)


def test_select_picks_the_best_setting_on_validation_without_touching_the_test_split(capsys):
    seen = []

    class Watched(Categorical):
        def loss(self, x):
            seen.append(x)
            return super().loss(x)

    ds = _dataset(test=np.full(50, 4))                            # 4 never occurs in train and valid
    ds.train, ds.valid = ds.train[ds.train < 4], ds.valid[ds.valid < 4]
    best = select(lambda: Watched(5), ds, {"lr": [1e-4, 0.3]}, epochs=20, batch_size=100, patience=3)
    assert best == {"lr": 0.3}
    assert not any((x == 4).any() for x in seen), "select looked at the test split"
    out = capsys.readouterr().out
    assert "lr=0.0001: validation loss" in out and "chosen on validation: lr=0.3" in out
