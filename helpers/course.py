"""The course's harness for the homework's answers (CS294-158 2020, homework 1, questions 1 and 2).

The homework asks for one function per part, in this form (losses in nats per dimension):

    q1_a(train_data, test_data, d, dset_id) -> train_losses, test_losses, distribution   (q1_b alike)
    q2_a(train_data, test_data, d, dset_id) -> train_losses, test_losses, distribution   a (d, d) table
    q2_b(train_data, test_data, image_shape, dset_id) -> train_losses, test_losses, samples   (100, H, W, 1) bits

`train_losses` holds one value per training iteration; `test_losses` one per epoch, the value before
training first. `q1_results` and `q2_results` call such a function as the course's `q1_save_results` and
`q2_save_results` do: on the course's whole training split (here train + valid, which are exactly it) and
its test split, as numpy arrays of the course's shapes; they check what comes back (naming what is wrong),
print `Final Test Loss`, draw the course's figures, and return the function's outputs. So a learner's
function and ours run through the same harness.
"""

import numpy as np

from ._checks import as_floats, as_numpy, check_probabilities
from .data import load_dataset
from .plotting import plot_1d_distribution, plot_2d_distributions, plot_image_grid, plot_losses

DATASETS = {
    1: {"1d": "1d-1", "2d": "smiley", "images": "shapes"},
    2: {"1d": "1d-2", "2d": "hinton", "images": "mnist"},
}
N_SAMPLES = 100  # q2_b's samples: the course shows them as a 10 x 10 grid


def course_splits(name):
    """The course's (train_data, test_data) of dataset `name`, and the Dataset: our train and valid together
    are the course's training split (in its order), our test split is its test split."""
    ds = load_dataset(name)
    return np.concatenate([ds.train, ds.valid]), ds.test, ds


def _dataset(dset_id, kind):
    if dset_id not in DATASETS:
        raise ValueError(f"dset_id must be 1 or 2 (the course's two datasets of each part), got {dset_id!r}")
    return DATASETS[dset_id][kind]


def checked_loss_curves(train_losses, test_losses, name):
    """The two loss lists an answer function `name` returned, as float arrays, checked for the course's form
    (a ValueError says what is wrong)."""
    train = as_floats(train_losses, f"the train losses {name} returned")
    test = as_floats(test_losses, f"the test losses {name} returned")
    if len(test) < 2:
        raise ValueError(
            f"{name} returned {len(test)} test losses: the course wants one before training and one "
            f"after each epoch, so at least 2"
        )
    if len(train) < len(test) - 1:
        raise ValueError(
            f"{name} returned {len(train)} train losses for {len(test) - 1} epochs: the course wants one "
            f"per training iteration (batch), at least one per epoch"
        )
    if not (np.isfinite(train).all() and np.isfinite(test).all()):
        raise ValueError(
            f"{name} returned losses that are not all finite: the training diverged (lower the learning rate)"
        )
    return train, test


def _as_array(value, name):
    """What an answer returned (`name` says what) as a numpy array: an array, a tensor (with grad, on any device), or
    (nested) lists of them, such as `[p[i] for i in range(d)]` of a model's probabilities, which np.asarray refuses
    with grad."""

    def convert(v):
        return np.array([convert(x) for x in v]) if isinstance(v, (list, tuple)) else as_numpy(v)

    try:
        return convert(value)
    except ValueError as error:  # ragged
        raise ValueError(f"{name} is no array: {error}") from None


def checked_distribution(distribution, shape, name):
    """The distribution an answer function `name` returned, as a float64 array of the given shape, checked to
    be probabilities (a ValueError says what is wrong)."""
    p = _as_array(distribution, f"the distribution {name} returned")
    if p.shape != shape:
        raise ValueError(f"{name} returned a distribution of shape {p.shape}, not {shape}")
    return check_probabilities(p, f"the distribution {name} returned")


def q1_results(dset_id, part, fn):
    """Run a question-1 answer `fn(train_data, test_data, d, dset_id)` on 1D dataset `dset_id` (1: d = 20,
    2: d = 100), print its final test loss, and draw its training curves and its distribution over the data."""
    train_data, test_data, ds = course_splits(_dataset(dset_id, "1d"))
    train_losses, test_losses, distribution = fn(train_data, test_data, ds.d, dset_id)
    name = getattr(fn, "__name__", "the function")
    train, test = checked_loss_curves(train_losses, test_losses, name)
    p = checked_distribution(distribution, (ds.d,), name)
    print(f"Final Test Loss: {test[-1]:.4f}")
    plot_losses(train, test, title=f"Q1({part}) Dataset {dset_id} Train Plot")
    plot_1d_distribution(
        train_data, {"learned distribution": p}, title=f"Q1({part}) Dataset {dset_id} Learned Distribution"
    )
    return train_losses, test_losses, distribution


def q2_results(dset_id, part, fn):
    """Run a question-2 answer on dataset `dset_id`, print its final test loss and draw the course's figures.

    part "a": `fn(train_data, test_data, d, dset_id)` on the pairs of dataset 1 (smiley, d = 25) or 2 (Hinton,
    d = 200), drawn with the true table beside the learned one. Part "b": `fn(train_data, test_data,
    image_shape, dset_id)` on the binary images of dataset 1 (Shapes) or 2 (binarized MNIST), data of shape
    (N, H, W, 1), drawn with its 100 samples."""
    if part not in ("a", "b"):
        raise ValueError(f"part must be 'a' (2D data) or 'b' (binary images), got {part!r}")
    name = getattr(fn, "__name__", "the function")
    if part == "a":
        train_data, test_data, ds = course_splits(_dataset(dset_id, "2d"))
        train_losses, test_losses, distribution = fn(train_data, test_data, ds.d, dset_id)
        out = distribution
        p = checked_distribution(distribution, (ds.d, ds.d), name)
    else:
        train_data, test_data, ds = course_splits(_dataset(dset_id, "images"))
        shape = tuple(ds.shape)
        train_data, test_data = (
            x.reshape(len(x), *shape, 1).astype(np.uint8) for x in (train_data, test_data)
        )
        train_losses, test_losses, samples = fn(train_data, test_data, shape, dset_id)
        out = samples
        s = _as_array(samples, f"the samples {name} returned")
        if s.shape != (N_SAMPLES, *shape, 1) or not np.isin(s, (0, 1)).all():
            raise ValueError(
                f"{name} returned samples of shape {s.shape} with values {np.unique(s)[:5]}: the course "
                f"wants {N_SAMPLES} binary images, shape ({N_SAMPLES}, {shape[0]}, {shape[1]}, 1), "
                f"values 0 and 1"
            )
    train, test = checked_loss_curves(train_losses, test_losses, name)
    print(f"Final Test Loss: {test[-1]:.4f}")
    plot_losses(train, test, title=f"Q2({part}) Dataset {dset_id} Train Plot")
    if part == "a":
        plot_2d_distributions(
            {"true distribution": ds.true_distribution, "learned distribution": p},
            title=f"Q2(a) Dataset {dset_id} Learned Distribution",
        )
    else:
        plot_image_grid(s[..., 0].astype(np.float32), nrow=10, title=f"Q2(b) Dataset {dset_id} Samples")
    return train_losses, test_losses, out
