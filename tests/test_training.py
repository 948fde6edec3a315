import numpy as np
import pytest
import torch
from torch import nn

from helpers import plotting
from helpers.training import BatchLoader, evaluate, seed, train_epochs


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
    train_losses, test_losses = train_epochs(model, train, test, epochs=4, lr=0.1, progress=False)
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
    assert [e for e, _ in seen] == [1, 2, 3] and len(result.test_losses) == 4
    assert [loss for _, loss in seen] == list(result.test_losses[1:])
    # Resuming with the same optimizer continues Adam's moments: the same as one uninterrupted run.
    seed(0)
    a, b = Categorical(5), Categorical(5)
    train_epochs(a, BatchLoader(x, 100), BatchLoader(x, 500), epochs=4, lr=0.05, progress=False)
    optimizer = torch.optim.Adam(b.parameters(), lr=0.05)
    for _ in range(2):
        train_epochs(b, BatchLoader(x, 100), BatchLoader(x, 500), epochs=2, lr=None, progress=False, optimizer=optimizer)
    torch.testing.assert_close(a.logits, b.logits)


def test_nan_loss_stops_naming_epoch_and_batch():
    x = _data(100)
    with pytest.raises(FloatingPointError, match="epoch 2, batch 3"):
        train_epochs(NaNAfter(5, bad_call=10 + 3), BatchLoader(x, 10), BatchLoader(x, 10), 3, 0.01, progress=False)


def test_bad_arguments_are_named():
    loader = BatchLoader(_data(10), 5)
    with pytest.raises(TypeError, match="has no loss"):
        train_epochs(nn.Linear(2, 2), loader, loader, 1, 0.01, progress=False)
    with pytest.raises(ValueError, match="test_loader is empty"):
        train_epochs(Categorical(5), loader, torch.utils.data.DataLoader([]), 1, 0.01, progress=False)
    with pytest.raises(ValueError, match="empty dataset"):
        BatchLoader(np.zeros(0, dtype=int))


def test_batch_loader_covers_every_example_once_and_reshuffles():
    x = np.arange(103)
    loader = BatchLoader(x, 10, shuffle=True)
    epochs = [torch.cat(list(loader)).numpy() for _ in range(2)]
    assert len(loader) == 11
    for seen in epochs:
        np.testing.assert_array_equal(np.sort(seen), x)
    assert not np.array_equal(epochs[0], epochs[1])
    np.testing.assert_array_equal(torch.cat(list(BatchLoader(x, 10))).numpy(), x)


def test_every_plot_can_be_saved(tmp_path):
    rng = np.random.RandomState(0)
    figures = {
        "training.png": lambda p: plotting.plot_training(rng.rand(30), rng.rand(4), title="t", save_path=p),
        "training_zoom.png": lambda p: plotting.plot_training(rng.rand(30), rng.rand(4), save_path=p, ylim=(0.2, 0.8)),
        "1d.png": lambda p: plotting.plot_1d_distribution(rng.randint(0, 10, 100), np.full(10, 0.1), save_path=p),
        "1d_data.png": lambda p: plotting.plot_1d_distribution(rng.randint(0, 10, 100), save_path=p),
        "1d_two.png": lambda p: plotting.plot_1d_distribution(rng.randint(0, 10, 100), {"a": np.full(10, 0.1),
                                                                                         "b": np.full(10, 0.1)}, save_path=p),
        "2d.png": lambda p: plotting.plot_2d_distributions({"a": rng.rand(5, 5), "b": rng.rand(5, 5)}, save_path=p),
        "grid.png": lambda p: plotting.plot_image_grid(rng.randint(0, 2, (12, 6, 6)), nrow=4, save_path=p),
        "rows.png": lambda p: plotting.plot_image_rows({"a": rng.randint(0, 2, (5, 6, 6)), "b": rng.rand(5, 6, 6)},
                                                        captions={"b": list("vwxyz")}, title="t", save_path=p),
    }
    for name, draw in figures.items():
        draw(tmp_path / name)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
