import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers import devices
from helpers.data import Dataset
from helpers.devices import full_float32_precision, training_device
from helpers.models import MADE, Histogram
from helpers.training import (
    BatchLoader,
    EarlyStopping,
    TrainingDiverged,
    _batches,
    _loss,
    evaluate,
    fit,
    seed,
    select,
    train_epochs,
)


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
        runs.append(
            train_epochs(
                model,
                BatchLoader(x, 50, shuffle=True, seed=torch.randint(100, ()).item()),
                BatchLoader(x, 500),
                epochs=2,
                lr=0.05,
                progress=False,
            )
        )
    np.testing.assert_array_equal(runs[0].train_losses, runs[1].train_losses)


def test_callback_stops_early_and_optimizer_state_carries_over():
    x = _data()
    model = Categorical(5)
    seen = []
    result = train_epochs(
        model,
        BatchLoader(x, 100),
        BatchLoader(x, 500),
        epochs=10,
        lr=0.05,
        progress=False,
        on_epoch_end=lambda epoch, loss: seen.append((epoch, loss)) or epoch == 3,
    )
    assert [e for e, _ in seen] == [1, 2, 3] and len(result.valid_losses) == 4
    assert [loss for _, loss in seen] == list(result.valid_losses[1:])
    # Resuming with the same optimizer continues Adam's moments: the same as one uninterrupted run.
    seed(0)
    a, b = Categorical(5), Categorical(5)
    train_epochs(a, BatchLoader(x, 100), BatchLoader(x, 500), epochs=4, lr=0.05, progress=False)
    optimizer = torch.optim.Adam(b.parameters(), lr=0.05)
    for _ in range(2):
        train_epochs(
            b,
            BatchLoader(x, 100),
            BatchLoader(x, 500),
            epochs=2,
            lr=None,
            progress=False,
            optimizer=optimizer,
        )
    torch.testing.assert_close(a.logits, b.logits)


def test_nan_loss_stops_at_its_batch_restores_the_last_good_epoch_and_keeps_the_losses():
    # On the CPU the loss is checked at every batch (on a GPU every 32): pinned, so this holds on any machine.
    x = _data(100)
    model = NaNAfter(5, bad_call=10 + 3)  # epoch 2, batch 3
    with pytest.raises(
        TrainingDiverged, match="epoch 2, batch 3; lower the learning rate or pass grad_clip"
    ) as err:
        train_epochs(model, BatchLoader(x, 10), BatchLoader(x, 10), 3, 0.01, progress=False, device="cpu")
    assert model.calls == 13, "training went on after the bad batch"
    assert torch.isfinite(model.logits).all()
    after_epoch_1 = NaNAfter(5, bad_call=0)
    train_epochs(after_epoch_1, BatchLoader(x, 10), BatchLoader(x, 10), 1, 0.01, progress=False, device="cpu")
    torch.testing.assert_close(model.logits, after_epoch_1.logits)
    assert len(err.value.train_losses) == 12 and np.isfinite(err.value.train_losses).all()
    assert len(err.value.valid_losses) == 2 and (err.value.epoch, err.value.batch) == (2, 3)
    with pytest.raises(TrainingDiverged, match="or clip harder than 1.0"):
        train_epochs(
            NaNAfter(5, bad_call=2),
            BatchLoader(x, 10),
            None,
            1,
            0.01,
            grad_clip=1.0,
            progress=False,
            device="cpu",
        )


@pytest.mark.parametrize("epochs,validate", [(3, False), (1, False), (3, True)])
def test_full_batch_divergence_restores_a_state_whose_loss_was_seen_finite(epochs, validate):
    # One batch per epoch: the update of epoch 1's only batch is judged by no loss of epoch 1, so the
    # state after it must not count as good, nor be returned as the result of a 1-epoch run.
    x = np.random.RandomState(0).randint(0, 2, (50, 4))
    model = MADE(4, 2, [8])
    initial = copy.deepcopy(model.state_dict())
    with pytest.raises(TrainingDiverged, match="restored to its state before training") as err:
        train_epochs(
            model,
            BatchLoader(x, 100),
            BatchLoader(x, 100) if validate else None,
            epochs,
            lr=1e20,
            progress=False,
        )
    assert torch.isfinite(model.log_prob(torch.as_tensor(x))).all()
    for key, value in initial.items():
        if torch.is_tensor(value):
            assert torch.equal(model.state_dict()[key], value), key
    assert np.isfinite(err.value.train_losses).all() and len(err.value.train_losses) >= 1
    assert len(err.value.valid_losses) == (1 if validate else 0)


@pytest.mark.parametrize(
    "loader", [torch.arange(10) % 5, np.arange(10) % 5, (b for b in [torch.arange(5)]), 3]
)
def test_train_epochs_refuses_what_is_not_a_loader_of_batches(loader):
    with pytest.raises(TypeError, match="train_loader must be a loader of batches.*BatchLoader"):
        train_epochs(Categorical(5), loader, None, 1, 0.01, progress=False)
    with pytest.raises(TypeError, match="loader must be a loader of batches.*BatchLoader"):
        evaluate(Categorical(5), loader)


class NaNValid(Categorical):
    def loss(self, x):
        return super().loss(x) * (float("nan") if not self.training else 1.0)


def test_nan_validation_loss_raises():
    loader = BatchLoader(_data(20), 10)
    with pytest.raises(FloatingPointError, match="validation loss is nan after epoch 0"):
        train_epochs(NaNValid(5), loader, loader, 1, 0.01, progress=False)


def _dataset(n=1000, valid=None, test=None):
    x = _data(n)
    return Dataset(
        "toy",
        train=x[:600],
        valid=x[600:800] if valid is None else valid,
        test=x[800:] if test is None else test,
        d=5,
        shape=(),
    )


def test_fit_raises_on_a_nan_test_loss():
    class NaNTest(Categorical):  # finite in training and validation, NaN on the test split (values >= 3)
        def loss(self, x):
            return super().loss(x) * (float("nan") if (x >= 3).any() and not self.training else 1.0)

    ds = _dataset(valid=np.zeros(10, dtype=int), test=np.full(10, 4))
    with pytest.raises(FloatingPointError, match="the test loss is nan"):
        fit(NaNTest(5), ds, epochs=1, lr=0.1)


@pytest.mark.parametrize(
    "kwargs,match",
    [
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
        (dict(lr=True), "lr .* positive finite number, got True"),
        (dict(lr=torch.tensor([0.1, 0.2])), "lr .* positive finite number"),
        (dict(lr=1e38), "lr=1e\\+38 is too large: Adam's first step"),
    ],
)
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
    result = fit(model, _dataset(), epochs=100, lr=0.1, batch_size=600, patience=2)  # one batch per epoch
    assert (
        "Best validation loss 0.0000 nats per dimension at epoch 3 (stopped after 5, 2 without improvement)"
        in capsys.readouterr().out
    )
    assert result.best_epoch == 3 and result.valid_losses.tolist() == [9, 4, 1, 0, 1, 4]
    assert model.steps == 3, "the best state is kept"
    assert result.test_loss == 0
    assert model.evaluations == len(result.valid_losses) + 1, (
        "validation every epoch, then the test split once"
    )


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

    ds = _dataset(test=np.full(50, 4))  # 4 never occurs in train and valid
    ds.train, ds.valid = ds.train[ds.train < 4], ds.valid[ds.valid < 4]
    best = select(lambda: Watched(5), ds, {"lr": [1e-4, 0.3]}, epochs=20, batch_size=100, patience=3)
    assert best == {"lr": 0.3}
    assert not any((x == 4).any() for x in seen), "select looked at the test split"
    out = capsys.readouterr().out
    assert "lr=0.0001: validation loss" in out and "chosen on validation: lr=0.3" in out


@pytest.mark.parametrize(
    "lr,grad_clip",
    [
        (np.float32(0.1), np.float64(1.0)),
        (torch.tensor(0.1), torch.tensor(1)),
        (np.int64(1), np.float16(1.0)),
    ],
)
def test_learning_rates_and_clips_of_any_real_type_are_accepted(lr, grad_clip):
    loader = BatchLoader(_data(100), 10)
    seed(0)
    a, b = Categorical(5), Categorical(5)
    train_epochs(a, loader, None, 1, lr, grad_clip=grad_clip, progress=False)
    train_epochs(b, loader, None, 1, float(lr), grad_clip=float(grad_clip), progress=False)
    torch.testing.assert_close(a.logits, b.logits)


def test_numpy_integer_seeds_are_accepted():
    for value in np.arange(2):  # a loop over np.arange gives np.int64
        seed(value)
        first = torch.rand(3)
        seed(int(value))
        assert torch.equal(first, torch.rand(3))
    x = np.arange(20)
    assert torch.equal(
        torch.cat(list(BatchLoader(x, 5, shuffle=True, seed=np.int64(3)))),
        torch.cat(list(BatchLoader(x, 5, shuffle=True, seed=3))),
    )
    fit(Categorical(5), _dataset(), epochs=1, lr=0.1, loader_seed=np.int32(2), test=False, verbose=False)
    assert torch.equal(
        MADE(4, 2, [8], ordering="random", seed=np.int64(5)).numbers0,
        MADE(4, 2, [8], ordering="random", seed=5).numbers0,
    )
    for bad in (-1, 2.0, True, 2**32):
        with pytest.raises(
            ValueError, match="seed \\(a random seed\\) must be an integer in \\[0, 4294967295\\]"
        ):
            seed(bad)
        with pytest.raises(ValueError, match="seed"):
            BatchLoader(x, 5, seed=bad)


class BlowsUp(Categorical):
    """Its training loss becomes NaN once a logit passes 1.2 in size: after a few steps at lr = 1, never at 0.01."""

    def loss(self, x):
        loss = super().loss(x)
        return loss * float("nan") if self.training and self.logits.abs().max() > 1.2 else loss


def test_select_counts_a_diverged_setting_as_infinitely_bad_and_keeps_the_others(capsys):
    ds = _dataset()
    best = select(lambda: BlowsUp(5), ds, {"lr": [0.01, 1.0]}, epochs=5, batch_size=100)
    assert best == {"lr": 0.01}
    out = capsys.readouterr().out
    assert "lr=1.0: diverged at epoch" in out and "counted as infinitely bad" in out
    assert "lr=0.01: validation loss" in out and "chosen on validation: lr=0.01" in out
    with pytest.raises(TrainingDiverged, match="every setting of the grid diverged"):
        select(lambda: BlowsUp(5), ds, {"lr": [1.0, 2.0]}, epochs=5, batch_size=100)


def test_select_refuses_a_factory_that_returns_a_model_it_returned_before():
    """`lambda: model` would train each setting from the weights the last one left: the same rate listed twice
    scored differently (issue 44, item 4)."""
    model = Categorical(5)
    with pytest.raises(
        ValueError, match=r"make_model returned the same Categorical .* build a fresh model inside it"
    ):
        select(lambda: model, _dataset(), {"lr": [0.1, 0.1]}, epochs=2, batch_size=100)


def test_early_stopping_keeps_the_lowest_loss_and_stops_after_patience_epochs_without_one():
    stopping = EarlyStopping(patience=2)
    improved = [stopping.update(epoch, loss) for epoch, loss in enumerate([3.0, 2.0, 2.0, 2.5], 1)]
    assert improved == [True, True, False, False] and (stopping.best_epoch, stopping.best_loss) == (2, 2.0)
    assert not stopping.should_stop(3) and stopping.should_stop(4)
    resumed = EarlyStopping(patience=3, best_loss=1.0, best_epoch=10)  # from a checkpoint
    assert not resumed.update(11, 1.5) and not resumed.should_stop(12) and resumed.should_stop(13)
    assert not EarlyStopping().should_stop(1000)  # no patience: never stops


def test_small_models_train_on_the_cpu_even_when_cuda_is_present(monkeypatch, capsys):
    with monkeypatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: True)  # emulates a GPU machine
        assert training_device(Histogram(100))[0].type == "cpu"
        device, reason = training_device(MADE((28, 28), 2, [512, 512]))
        assert device.type == "cuda" and reason is None
    assert training_device(MADE((28, 28), 2, [512, 512])) == (torch.device("cpu"), None)
    # A whole run, with CUDA present for helpers.devices only (torch's Adam asks CUDA itself when told it is there).
    monkeypatch.setattr(devices, "default_device", lambda: torch.device("cuda"))
    model = Categorical(5)
    train_epochs(model, BatchLoader(_data(100), 10), None, 1, 0.01)
    out = capsys.readouterr().out
    assert "on cpu" in out and "kept on the CPU: a model of 5 parameters" in out
    assert model.logits.device.type == "cpu"


def test_batches_for_a_gpu_are_checked_on_the_cpu_not_read_back_from_the_device():
    # Meta tensors hold no values, so reading one back fails: like a GPU sync, made visible.
    model = Histogram(5).to("meta")
    batches = list(_batches(BatchLoader(np.arange(5), 2), torch.device("meta"), model))
    assert [(b.device.type, checked) for b, checked in batches] == [("meta", True)] * 3
    assert _loss(model, *batches[0]).device.type == "meta"  # no value read on the device
    with pytest.raises(RuntimeError, match="cannot be called on meta tensors"):
        model.loss(batches[0][0])  # a direct call still checks the values
    with pytest.raises(ValueError, match="outside the categories"):
        list(_batches(BatchLoader(np.array([0, 7])), torch.device("meta"), model))
    cpu_batches = list(_batches(BatchLoader(np.arange(5), 2), torch.device("cpu"), Histogram(5)))
    assert not any(checked for _, checked in cpu_batches)  # on the CPU the model's own check suffices


class DeviceOnly(torch.Tensor):
    """Emulates a CUDA tensor on the CPU: it refuses to become a numpy array."""

    def __array__(self, *args, **kwargs):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")


def test_batch_loader_accepts_tensors_without_a_numpy_view():
    data = torch.arange(10).as_subclass(DeviceOnly)
    batches = list(BatchLoader(data, 4, shuffle=True))
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    np.testing.assert_array_equal(
        torch.cat(list(BatchLoader(np.flip(np.arange(10)), 4))).numpy(), np.arange(10)[::-1]
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batch_loader_and_training_on_cuda_tensors():
    data = torch.as_tensor(_data(100)).cuda()
    model = Categorical(5)
    train_epochs(
        model,
        BatchLoader(data, 10, shuffle=True),
        BatchLoader(data, 50),
        2,
        0.05,
        progress=False,
        device="cuda",
    )
    assert model.logits.device.type == "cuda"


def test_full_float32_precision_restores_the_previous_setting():
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("high")  # TF32, a common Colab line
        with full_float32_precision():
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_float32_matmul_precision() == "high"
        with pytest.raises(RuntimeError), full_float32_precision():
            raise RuntimeError
        assert torch.get_float32_matmul_precision() == "high"
    finally:
        torch.set_float32_matmul_precision(previous)


def test_an_optimizer_built_for_another_model_is_refused_before_any_training():
    """A notebook cell re-run makes a new model while the old optimizer is kept: its steps would change nothing."""
    loader = BatchLoader(_data(20), 10)
    model, old = Categorical(5), Categorical(5)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(
        ValueError,
        match=r"optimizer \(Adam\) holds 1 tensors, none of them among the 1 parameters "
        r"of this Categorical: it was built for another model",
    ):
        train_epochs(
            model, loader, loader, 1, optimizer=torch.optim.Adam(old.parameters(), 0.1), progress=False
        )
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    train_epochs(
        model, loader, loader, 1, optimizer=torch.optim.Adam(model.parameters(), 0.1), progress=False
    )


@pytest.mark.parametrize("optimizer", ["adam", torch.optim.Adam])
def test_an_optimizer_that_is_not_one_is_named_with_the_fix(optimizer):
    loader = BatchLoader(_data(20), 10)
    with pytest.raises(
        TypeError, match="optimizer must be a torch.optim.Optimizer .*; for a fresh Adam, pass lr= instead"
    ):
        train_epochs(Categorical(5), loader, None, 1, optimizer=optimizer, progress=False)


@pytest.mark.parametrize(
    "batches,kind",
    [([np.arange(5)], "ndarray"), ([{"x": torch.arange(5)}], "dict"), ([[np.arange(5)]], "ndarray")],
)
def test_a_loader_of_what_is_not_tensors_is_named_with_the_fix(batches, kind):
    with pytest.raises(
        TypeError,
        match=f"train_loader yielded a batch of type {kind}; each batch must be a tensor.*"
        r"BatchLoader\(x, batch_size=128\)",
    ):
        train_epochs(Categorical(5), batches, None, 1, 0.1, progress=False)
    with pytest.raises(TypeError, match=f"loader yielded a batch of type {kind}"):
        evaluate(Categorical(5), batches)


@pytest.mark.parametrize(
    "grid,message",
    [
        (
            {"lr": 0.01},
            r"grid\['lr'\] must be a list of the values to try, got 0.01; write \{'lr': \[0.01\]\}",
        ),
        (
            {"lr": "0.01"},
            r"grid\['lr'\] must be a list of the values to try, got the string '0.01'; write the values "
            r"themselves, e.g. \{'lr': \[0.01\]\}",
        ),
        ([("lr", [0.01])], "grid must be a dict"),
    ],
)
def test_a_grid_value_that_is_not_a_list_is_named_before_any_training(grid, message, capsys):
    with pytest.raises(TypeError, match=message):
        select(lambda: pytest.fail("a model was made"), _dataset(), grid, epochs=1)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    "device,absent",
    [("cuda", not torch.cuda.is_available()), ("mps", not torch.backends.mps.is_available()), ("tpu", True)],
)
def test_a_device_that_is_not_here_is_named_with_the_automatic_choice(device, absent):
    if not absent:
        pytest.skip(f"{device} is present here")
    loader = BatchLoader(_data(20), 10)
    message = f"device='{device}' cannot be used here .*; pass device=None for the automatic choice"
    with pytest.raises(ValueError, match=message):
        train_epochs(Categorical(5), loader, None, 1, 0.1, device=device, progress=False)
    with pytest.raises(ValueError, match=message):
        evaluate(Categorical(5), loader, device=device)


class Uniform(nn.Module):
    """A baseline without parameters: log d nats for every value."""

    def loss(self, x):
        return torch.full((), math.log(5.0))


def test_a_model_without_parameters_is_evaluated_on_the_cpu_and_not_trained():
    loader = BatchLoader(_data(20), 10)
    assert evaluate(Uniform(), loader) == pytest.approx(math.log(5))
    with pytest.raises(ValueError, match="Uniform has no parameters: there is nothing to train"):
        train_epochs(Uniform(), loader, loader, 1, 0.1, progress=False)
