"""Figures of the notebooks, one job per function.

Each function checks its inputs before drawing (an error says what is wrong and how to fix it),
shows the figure inline, also writes it to `save_path` when given (the folder must exist), and then
closes it, so a script that makes many figures keeps none of them open.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.collections import LineCollection
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid

from ._checks import as_floats, as_numpy, check_integer, check_probabilities
from .models.masks import reachability
from .training import TrainingDiverged

NLL_LABEL = "NLL (nats per dimension)"
COLOUR_PERCENTILE = 99.5  # plot_2d_distributions: each panel's colour scale tops out at this percentile of it
MAX_CATEGORIES = 1000  # plot_1d_distribution: the figure is about 900 pixels wide, so more bars are sub-pixel
MAX_ROW_IMAGES = 12  # plot_image_rows: columns beyond this are unreadable on GitHub (10 read best)
MAX_DRAWN_UNITS = 12  # plot_made_connectivity: units per layer that can still be drawn legibly


# --- shared: inputs checked before drawing, figures closed after showing ------------------------


def _check_save_path(save_path):
    """Before drawing: `save_path` must name a file, of a format matplotlib writes, in a folder that exists.

    Matplotlib itself would append .png to a folder's name or a name without extension, and refuse an
    unknown extension only once the figure is drawn.
    """
    if save_path is None:
        return
    path = Path(save_path)
    if path.is_dir():
        raise IsADirectoryError(
            f"cannot save the figure to {save_path}: it is a folder; name the file to write in "
            f"it, e.g. {path / 'figure.png'}"
        )
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        found = (
            f"the extension {path.suffix!r} is no format matplotlib writes"
            if path.suffix
            else "it has no extension"
        )
        raise ValueError(
            f"cannot save the figure to {save_path}: {found}; end it with one of "
            f"{', '.join('.' + f for f in sorted(formats))} (.png for the notebooks)"
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"cannot save the figure to {save_path}: the folder {path.parent} "
            f"does not exist; create it first (os.makedirs)"
        )


def _finish(fig, title, save_path):
    """Title the figure, write it to `save_path` (if given), show it inline and close it."""
    try:
        if title:
            fig.suptitle(title)
        if save_path is not None:
            fig.savefig(save_path, dpi=120, bbox_inches="tight")
        plt.show()
    finally:
        plt.close(fig)


def _legend_outside(ax, **kwargs):
    """A legend to the right of the axes, where it can cover no data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, **kwargs)


def _as_category_array(data, d, name):
    """`data` as a 1-D integer array with values in [0, d − 1] (d None: any value >= 0)."""
    x = as_numpy(data)
    if x.ndim != 1 or len(x) == 0 or x.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be a non-empty 1-D array of integer categories, got shape {x.shape}, "
            f"dtype {x.dtype}"
        )
    lo, hi = int(x.min()), int(x.max())
    if lo < 0 or (d is not None and hi > d - 1):
        support = f"[0, {d - 1}] (d = {d})" if d is not None else "0, 1, 2, ..."
        raise ValueError(
            f"{name} has values in [{lo}, {hi}], outside the categories {support} of the distribution"
        )
    return x


def _as_probabilities(p, name):
    p = as_numpy(p)
    if p.ndim != 1 or len(p) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of probabilities, got shape {p.shape}")
    return check_probabilities(p, name)


def _as_images(images, name):
    """`images` as a float32 array (N, H, W) with values in [0, 1]."""
    x = as_numpy(images)
    if x.ndim == 2:
        raise ValueError(
            f"{name} must have shape (N, H, W), got one image of shape {x.shape}: pass images[None] "
            f"for one image"
        )
    if x.ndim == 4 and x.shape[1] == 1:
        raise ValueError(
            f"{name} must have shape (N, H, W), got {x.shape}: drop the channel axis with images[:, 0]"
        )
    if x.ndim != 3 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty array of shape (N, H, W), got shape {x.shape}")
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got dtype {x.dtype}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(
            f"{name} must have values in [0, 1], got values in [{x.min():g}, {x.max():g}]: divide 0-255 "
            f"images by 255, or the categories 0 .. d - 1 of a model with d > 2 by d - 1"
        )
    return x


# --- training curves and one-variable distributions ---------------------------------------------


def plot_training(result, title=None, save_path=None, ylim=None, log_epochs=False):
    """Learning curves of a `helpers.training.TrainingResult`, in nats per dimension, on one epoch axis.

    Draws the training loss of every batch (placed at its fraction of the epochs), the validation
    loss before training (epoch 0) and after each epoch, a vertical line at `result.best_epoch`
    ("selected epoch") when set, and `result.test_loss` when set, as one marker at the selected epoch
    (at the last epoch if `best_epoch` is None). Without validation losses the epochs cannot be told
    apart, so the x axis counts batches, and `best_epoch` must be None.

    `result` may also be the `TrainingDiverged` that train_epochs and fit raise: its losses until the
    divergence, the last epoch's first batches included, and a dotted line at the batch that diverged
    (at the end of the epoch whose validation loss did, when that was the bad loss). Diverged in a
    training batch of its first epoch, whose length is then unknown, the x axis counts batches.

    ylim: (bottom, top), to zoom in on the end of training, which the first losses would squash.
    log_epochs: a log epoch axis, for long runs (e.g. 1000 full-batch epochs) whose end a linear axis
        squashes into a sliver. The axis starts at the first batch (epoch 1 for full-batch runs); the
        loss before training, at epoch 0, has no place on it and is left out.
    """
    if not hasattr(result, "train_losses"):
        raise TypeError(
            f"plot_training takes the TrainingResult that train_epochs and fit return, got "
            f"{type(result).__name__}: call plot_training(result), not plot_training(*result)"
        )
    _check_save_path(save_path)
    diverged = isinstance(result, TrainingDiverged)
    # diverged in validation: every batch of result.epoch ran, then its validation loss was bad (result.batch None)
    bad_validation = diverged and result.batch is None
    best_epoch, test_loss = (None, None) if diverged else (result.best_epoch, result.test_loss)
    train = as_numpy(result.train_losses).astype(np.float64)
    valid = as_numpy(result.valid_losses).astype(np.float64)
    if train.ndim != 1 or len(train) == 0 or valid.ndim != 1:
        raise ValueError(
            f"result must hold 1-D losses, at least one training loss: got train_losses of shape "
            f"{train.shape}, valid_losses of shape {valid.shape}"
            + (" (the training diverged at its first batch)" if diverged and len(train) == 0 else "")
        )
    batches = np.arange(1, len(train) + 2)  # of each loss, and of the next batch: the one that diverged
    if len(valid) == 0:
        if best_epoch is not None:
            raise ValueError(
                "result.best_epoch is set but there are no validation losses to place epochs on the axis"
            )
        epochs, positions, unit = len(train), batches, "batch"
    elif diverged and len(valid) == 1 and not bad_validation:
        epochs, positions, unit = 0, batches, "batch"
    else:
        epochs = len(valid) - 1
        trained = epochs + (1 if bad_validation else 0)  # epochs whose batches all ran
        complete = len(train) - (result.batch - 1 if diverged and not bad_validation else 0)  # their batches
        if trained < 1 or complete % trained:
            raise ValueError(
                f"result has {len(train)} training losses and {len(valid)} validation losses: expected "
                f"one validation loss before training and one per epoch, and as many batches in every "
                f"epoch"
            )
        positions, unit = batches * trained / complete, "epoch"
    steps = positions[:-1]
    selected = (
        None
        if best_epoch is None
        else check_integer(best_epoch, "result.best_epoch", 0, "the epoch whose model was kept", epochs)
    )
    if log_epochs and selected == 0:
        raise ValueError(
            "result.best_epoch is 0 (the untrained model), which a log epoch axis cannot show: "
            "use log_epochs=False"
        )
    if test_loss is not None and not np.isfinite(test_loss):
        raise ValueError(f"result.test_loss must be a finite number or None, got {test_loss!r}")

    fig, ax = plt.subplots(figsize=(7.5, 4), layout="constrained")
    full_batch = unit == "epoch" and complete == trained  # one batch an epoch
    ax.plot(
        steps,
        train,
        color="C0",
        alpha=0.6,
        linewidth=0.8,
        label="train (full batch,\none step per epoch)" if full_batch else "train (per batch)",
    )
    if len(valid):
        first = 1 if log_epochs else 0
        ax.plot(
            np.arange(first, epochs + 1),
            valid[first:],
            "o-" if epochs <= 50 else "-",
            color="C1",
            markersize=4,
            label="validation (per epoch)" if log_epochs else "validation (before training,\nthen per epoch)",
        )
    if selected is not None:
        ax.axvline(selected, color="0.35", linestyle="--", linewidth=1, label=f"selected epoch ({selected})")
    if bad_validation:
        ax.axvline(
            result.epoch,
            color="C3",
            linestyle=":",
            linewidth=1.2,
            label=f"diverged (validation\nafter epoch {result.epoch})",
        )
    elif diverged:
        ax.axvline(
            positions[-1],
            color="C3",
            linestyle=":",
            linewidth=1.2,
            label=f"diverged (epoch {result.epoch},\nbatch {result.batch})",
        )
    if test_loss is not None:
        ax.plot(
            [epochs if selected is None else selected],
            [test_loss],
            "*",
            color="C3",
            markersize=13,
            label=f"test (selected model):\n{test_loss:.4f}",
        )
    if log_epochs:
        ax.set_xscale("log")
        ax.set_xlim(left=steps[0])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.set_xlabel(unit + (" (log scale)" if log_epochs else ""))
    ax.set_ylabel(NLL_LABEL)
    ax.set_ylim(ylim)
    _legend_outside(ax)
    _finish(fig, title, save_path)


def plot_losses(train_losses, test_losses, title=None, save_path=None):
    """The course's training plot: the training loss of every iteration and the test loss of every epoch
    (the first before training) on one epoch axis, in nats per dimension.

    train_losses: one value per training iteration, placed evenly over the epochs, as the course does.
    test_losses: len = epochs + 1.
    """
    _check_save_path(save_path)
    train, test = as_floats(train_losses, "train_losses"), as_floats(test_losses, "test_losses")
    if len(test) < 2 or len(train) == 0:
        raise ValueError(
            f"need the test loss before training and after at least one epoch, and at least one "
            f"training loss; got {len(test)} test and {len(train)} training losses"
        )
    epochs = len(test) - 1
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    ax.plot(np.linspace(0, epochs, len(train)), train, label="train loss (each iteration)", linewidth=0.8)
    ax.plot(np.arange(epochs + 1), test, "o-", label="test loss (each epoch)", markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel(NLL_LABEL)
    ax.legend()
    _finish(fig, title, save_path)


def _category_axis(ax, d):
    """x axis over the categories 0 .. d − 1: range [−0.5, d − 0.5], integer ticks (at most about 10)."""
    ax.set_xlim(-0.5, d - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    ax.set_xlabel("x (category)")


def plot_1d_distribution(train_data, probs=None, d=None, title=None, save_path=None, data_label="train data"):
    """The training data's histogram (frequencies) over the categories 0 .. d − 1, with learned
    distributions drawn over it as outlines.

    probs: None (data only), the d probabilities of one model, or {label: probabilities} for several,
        all over the same d categories.
    d: the number of categories when `probs` is None (default: the largest value + 1); if both are
        given they must agree. The x axis spans [−0.5, d − 0.5], so a data-only plot and a learned
        plot of the same data cover the same range. At most MAX_CATEGORIES.
    data_label: what the data are, for the legend (e.g. "train + valid data"); the count is added.
    """
    _check_save_path(save_path)
    if probs is not None and not isinstance(probs, dict):
        probs = {"model": probs}
    if probs == {}:
        raise ValueError("probs is an empty dict: pass None for the data alone")
    probs = {label: _as_probabilities(p, f"probs[{label!r}]") for label, p in (probs or {}).items()}
    lengths = {label: len(p) for label, p in probs.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(
            f"the probabilities have different lengths {lengths}: all must cover the same d categories"
        )
    if d is not None:
        d = check_integer(d, "d", 1, "the number of categories")
        if probs and d != len(next(iter(probs.values()))):
            raise ValueError(
                f"d = {d} but the probabilities cover {len(next(iter(probs.values())))} categories"
            )
    elif probs:
        d = len(next(iter(probs.values())))
    x = _as_category_array(train_data, d, "train_data")
    if d is None:
        d = int(x.max()) + 1
        if (
            d > MAX_CATEGORIES
        ):  # a stray value, most likely: drawing up to it could take minutes, or all memory
            raise ValueError(
                f"train_data's largest value is {d - 1}, so the plot would cover {d} categories, more "
                f"than the {MAX_CATEGORIES} a figure can show: pass d, the number of categories, and "
                f"values beyond it are named"
            )
    elif d > MAX_CATEGORIES:
        raise ValueError(f"d = {d} categories are more than the {MAX_CATEGORIES} a figure can show")
    edges = np.arange(d + 1) - 0.5

    fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
    ax.stairs(
        np.bincount(x, minlength=d) / len(x),
        edges,
        fill=True,
        color="C0",
        alpha=0.35,
        label=f"{data_label}\n({len(x)} examples)",
    )
    for i, (label, p) in enumerate(probs.items()):
        ax.stairs(p, edges, baseline=None, color=f"C{i + 1}", linewidth=1.8, label=label)
    _category_axis(ax, d)
    ax.set_ylabel("probability")
    _legend_outside(ax)
    _finish(fig, title, save_path)


def plot_mixture(train_data, model, title=None, save_path=None, data_label="train data"):
    """A discretized logistic mixture over its training data: the data's histogram, the model's
    distribution p(x) (black), and under it each weighted component π_i p_i(x) (shaded), which add up
    to it. The legend lists each component's parameters, the model's only ones: its weight π, mean μ
    and scale s, three numbers per component however many categories there are.

    model: a `helpers.models.DiscretizedLogisticMixture`.
    data_label: what the data are, for the legend (e.g. "train + valid data"); the count is added.
    """
    _check_save_path(save_path)
    if not hasattr(model, "component_distributions"):
        raise TypeError(f"model must be a DiscretizedLogisticMixture, got {type(model).__name__}")
    x = _as_category_array(train_data, model.d, "train_data")
    broken = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if broken:
        raise ValueError(
            f"the model's {', '.join(broken)} hold NaN or infinite values, which draw nothing (as after a "
            f"diverged training): train it again, e.g. with a lower learning rate"
        )
    components = model.component_distributions()
    means = as_numpy(model.means).astype(np.float64)
    scales = np.exp(as_numpy(model.log_scales).astype(np.float64))
    k, d = components.shape
    edges = np.arange(d + 1) - 0.5

    fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
    ax.stairs(
        np.bincount(x, minlength=d) / len(x),
        edges,
        fill=True,
        color="0.8",
        label=f"{data_label}\n({len(x)} examples)",
    )
    for i, component in enumerate(components):
        ax.stairs(
            component,
            edges,
            fill=True,
            alpha=0.45,
            color=f"C{i}",
            label=f"π = {component.sum():.2f}, μ = {means[i]:.1f}, s = {scales[i]:.2g}",
        )
    ax.stairs(components.sum(0), edges, baseline=None, color="black", linewidth=1.6, label="mixture p(x)")
    _category_axis(ax, d)
    ax.set_ylabel("probability")
    _legend_outside(ax, title=f"{k} components, {3 * k} parameters")
    _finish(fig, title, save_path)


def plot_2d_distributions(tables, title=None, save_path=None, shared_scale=False):
    """Tables p(x0 = row, x1 = column) side by side, e.g. {"true": p, "learned": q}, each with its colour bar.
    Each must hold probabilities summing to 1 (divide counts by their total).

    Each panel's colour scale goes from 0 to the 99.5th percentile of its own cells (COLOUR_PERCENTILE);
    the few cells above it take the top colour, which the bar's arrow marks. A scale set by a panel's
    maximum would let a few noisy cells (e.g. counts of a sample) dim everything else.
    shared_scale: one scale for all panels, up to the highest of their percentiles, so that the same
        colour is the same probability in every panel: for comparing tables, e.g. true and learned.
    """
    _check_save_path(save_path)
    if not isinstance(tables, dict) or not tables:
        raise ValueError("tables must be a non-empty dict {panel title: 2-D table}")
    tables = {name: as_numpy(t).astype(np.float64) for name, t in tables.items()}
    shapes = {name: t.shape for name, t in tables.items()}
    for name, t in tables.items():
        if t.ndim != 2 or t.size == 0:
            raise ValueError(
                f"tables[{name!r}] must be a non-empty 2-D table of probabilities, got shape {t.shape}"
            )
        check_probabilities(t, f"tables[{name!r}]")  # the colour bars say "probability"
    if len(set(shapes.values())) > 1:
        raise ValueError(f"the tables have different shapes {shapes}: all must cover the same categories")

    tops = {
        name: np.percentile(table, COLOUR_PERCENTILE) or table.max() or 1.0  # nearly all zeros: the maximum
        for name, table in tables.items()
    }
    if shared_scale:
        tops = dict.fromkeys(tables, max(tops.values()))
    fig, axes = plt.subplots(
        1, len(tables), figsize=(4.6 * len(tables), 4.2), squeeze=False, layout="constrained"
    )
    for ax, (name, table) in zip(axes[0], tables.items()):
        top = tops[name]
        image = ax.imshow(
            table, vmin=0, vmax=top, interpolation="nearest"
        )  # one block per cell, no smoothing
        fig.colorbar(
            image,
            ax=ax,
            shrink=0.85,
            extend="max" if table.max() > top else "neither",
            label="probability (shared scale)"
            if shared_scale
            else f"probability (top: {COLOUR_PERCENTILE}th percentile)",
        )
        ax.set_title(name)
        ax.set_xlabel("$x_1$ (column)")
        ax.set_ylabel("$x_0$ (row)")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    _finish(fig, title, save_path)


# --- images -------------------------------------------------------------------------------------


def plot_image_grid(images, nrow=10, title=None, save_path=None):
    """Images (N, H, W) with values in [0, 1] (binary images included) as one grid, `nrow` images a row."""
    _check_save_path(save_path)
    images = _as_images(images, "images")
    nrow = check_integer(nrow, "nrow", 1, "images per row of the grid")
    grid = make_grid(torch.from_numpy(images).unsqueeze(1), nrow=nrow, padding=1, pad_value=0.5)
    fig, ax = plt.subplots(
        figsize=(min(12, 0.6 * nrow + 1), min(12, 0.6 * -(-len(images) // nrow) + 1)), layout="constrained"
    )
    ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    _finish(fig, title, save_path)


def plot_image_rows(rows, captions=None, title=None, save_path=None):
    """Images in labelled rows, one column per example: {row label: images (N, H, W) in [0, 1]}.

    For images to compare column by column: samples over their nearest training images, or
    originals, their given part and completions. At most 12 images a row (10 read best on GitHub):
    split longer rows into several figures. `captions` ({row label: one string per image of that
    row}) go under that row's images.
    """
    _check_save_path(save_path)
    if not isinstance(rows, dict) or not rows:
        raise ValueError("rows must be a non-empty dict {row label: images (N, H, W)}")
    rows = {label: _as_images(images, f"rows[{label!r}]") for label, images in rows.items()}
    n = max(len(images) for images in rows.values())
    if n > MAX_ROW_IMAGES:
        raise ValueError(
            f"a row holds {n} images, more than {MAX_ROW_IMAGES} columns are unreadable on GitHub: "
            f"split the rows into figures of at most 10 images each (e.g. images[:10], images[10:20])"
        )
    captions = captions or {}
    for label, texts in captions.items():
        if label not in rows:
            raise ValueError(f"captions[{label!r}] names no row; the rows are {list(rows)}")
        if len(texts) != len(rows[label]):
            raise ValueError(
                f"captions[{label!r}] has {len(texts)} captions for the {len(rows[label])} images of "
                f"that row: give one per image"
            )

    label_width = max(len(label) for label in rows) * 0.09
    fig, axes = plt.subplots(
        len(rows),
        n,
        squeeze=False,
        layout="constrained",
        figsize=(0.85 * n + label_width, (0.95 if captions else 0.8) * len(rows) + 0.4),
    )
    for r, (label, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(c < len(images))  # a thin frame: white images on white paper
            ax.spines[:].set_color("0.6")
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                if label in captions:
                    ax.set_xlabel(captions[label][c], fontsize=8, labelpad=2)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    _finish(fig, title, save_path)


# --- MADE ---------------------------------------------------------------------------------------


def _unit_labels(model, ordering):
    """Labels of the input units (their dimension, and for d > 2 the category or threshold each codes),
    of the output units (for d = 2 the conditional each gives, for d > 2 the category of each logit),
    and each dimension's conditional p(x_i | the dimensions before i in `ordering`)."""
    D = model.D
    conditionals = []
    for i in range(D):
        earlier = ", ".join(f"x_{{{j}}}" for j in ordering[: ordering.index(i)])
        conditionals.append(f"$p(x_{{{i}}}" + (rf" \mid {earlier})$" if earlier else ")$"))
    if model.d == 2:
        return [f"$x_{{{i}}}$" for i in range(D)], conditionals, conditionals
    sign = "=" if model.encoding == "one-hot" else r"\geq"
    first = model.d - model.in_units  # one-hot codes x = 0 .. d - 1, the ordinal code x >= 1 .. d - 1
    inputs = [f"$x_{{{i}}}{sign}{v}$" for i in range(D) for v in range(first, model.d)]
    outputs = [f"$x_{{{i}}}{{=}}{v}$" for i in range(D) for v in range(model.d)]
    return inputs, outputs, conditionals


def plot_made_connectivity(model, mask_id=0, title=None, save_path=None):
    """A small MADE drawn like Figure 1 of the paper: what one of its masks lets it compute.

    Units are circles holding their connectivity numbers: inputs at the bottom (labelled with their
    data dimension), hidden layers above, outputs at the top (labelled with the conditional they
    give). Every kept weight of the unit-level masks (`model.layers[l].masks[mask_id]`) is a line, so
    the picture is exactly what the model computes; the direct input-to-output connections, if the
    model has them, are dashed orange lines. A hidden unit numbered m reads the units numbered at most
    m below it; the output of the dimension at position r of the ordering reads units numbered below r.

    Only for small models (at most 12 units in any layer): plot_made_masks draws large ones.
    """
    _check_save_path(save_path)
    numbers = [m.cpu().numpy() for m in model.unit_numbers(mask_id)]  # unit_numbers checks mask_id
    sizes = [len(m) for m in numbers]
    if max(sizes) > MAX_DRAWN_UNITS:
        raise ValueError(
            f"this MADE has layers of {sizes} units (inputs, hidden, outputs), too many to draw legibly "
            f"(at most {MAX_DRAWN_UNITS} a layer): draw a smaller model, e.g. D = 3 or 4, d = 2 and two "
            f"hidden layers of 4-6 units: MADE((3,), 2, [5, 5]), or use plot_made_masks"
        )
    width = max(sizes) - 1
    xs = [np.linspace(0, width, n) if n > 1 else np.array([width / 2]) for n in sizes]
    top = len(sizes) - 1
    masks = [layer.masks[mask_id].cpu().numpy() for layer in model.layers]
    ordering = model.orderings[mask_id].tolist()
    inputs, outputs, conditionals = _unit_labels(model, ordering)

    fig, ax = plt.subplots(figsize=(max(6.5, 0.85 * width + 3), 1.35 * top + 2), layout="constrained")
    segments = [
        [(xs[l][j], l), (xs[l + 1][k], l + 1)]
        for l, mask in enumerate(masks)
        for k, j in zip(*mask.nonzero())
    ]
    ax.add_collection(
        LineCollection(
            segments,
            colors="0.45",
            linewidths=0.9,
            zorder=1,
            gid="connections",
            label="connection (mask entry 1)",
        )
    )
    if model.direct is not None:
        kept = model.direct.masks[mask_id].cpu().numpy().nonzero()
        direct = [[(xs[0][j], 0), (xs[-1][k], top)] for k, j in zip(*kept)]
        ax.add_collection(
            LineCollection(
                direct,
                colors="C1",
                linewidths=1.0,
                linestyles="--",
                alpha=0.8,
                zorder=0,
                gid="connections",
                label="direct connection",
            )
        )
    colours = ["#cfe2f3"] + ["#eeeeee"] * (top - 1) + ["#f4cccc"]
    for l, (x, m) in enumerate(zip(xs, numbers)):
        ax.scatter(x, np.full(len(x), l), s=620, c=colours[l], edgecolors="black", linewidths=1, zorder=2)
        for xi, mi in zip(x, m):
            ax.text(xi, l, str(int(mi)), ha="center", va="center", fontsize=11, zorder=3)
        name = "inputs" if l == 0 else "outputs" if l == top else f"hidden {l}"
        ax.text(-0.7, l, name, ha="right", va="center", fontsize=10)
    for xi, text in zip(xs[0], inputs):
        ax.text(xi, -0.32, text, ha="center", va="top", fontsize=10)
    for xi, text in zip(xs[-1], outputs):
        ax.text(
            xi, top + 0.32, text, ha="center", va="bottom", fontsize=9, rotation=0 if model.D <= 4 else 30
        )
    if model.out_units > 1:  # one softmax per dimension: its conditional above its d logits
        for xi, text in zip(xs[-1].reshape(model.D, -1).mean(1), conditionals):
            ax.text(xi, top + 0.7, text, ha="center", va="bottom", fontsize=10)
    ax.set_xlim(-0.7, width + 0.5)
    ax.set_ylim(-0.75, top + (0.75 if model.out_units == 1 else 1.1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.spines[:].set_visible(False)
    ax.set_xlabel(f"ordering {ordering}; in the circles: connectivity numbers", fontsize=10)
    fig.legend(loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    _finish(
        fig,
        title
        or f"MADE, D = {model.D}, d = {model.d}, hidden layers {list(model.hidden_sizes)}: mask {mask_id}",
        save_path,
    )


def _dimension_reachability(model, mask_id):
    """Which input dimension reaches which output dimension through the model's own masks (those it computes with,
    not those its connectivity numbers promise): a bool (D, D) tensor, outputs by inputs, in data order. The masks
    are between units, grouped by dimension in data order (in_units per input dimension, out_units per output)."""
    reach = reachability([layer.masks[mask_id].cpu() for layer in model.layers])
    if model.direct is not None:
        reach |= model.direct.masks[mask_id].cpu().bool()
    D = model.D
    return reach.reshape(D, reach.shape[0] // D, D, reach.shape[1] // D).any(dim=3).any(dim=1)


def plot_made_masks(model, mask_id=0, title=None, save_path=None):
    """The masks of a MADE as images (black: weight kept), one panel per layer, for models of any size.

    The units of every layer are sorted by connectivity number, inputs and outputs by the position of
    their dimension in the ordering, which turns each mask into a staircase: a hidden unit numbered m
    reads the units numbered at most m below it, and the output at position r the units numbered
    below r. Then the direct connections, if the model has them. The last panel is the product of the
    model's own masks (with the direct path), which input dimension reaches which output, in ordering order:
    strictly lower-triangular, the autoregressive property, unless the masks break it.
    """
    _check_save_path(save_path)
    sort = [np.argsort(m.cpu().numpy(), kind="stable") for m in model.unit_numbers(mask_id)]
    layers = ["inputs"] + [f"hidden {l}" for l in range(1, len(sort) - 1)] + ["outputs"]
    names = (
        [f"{layers[0]}, by position in the ordering"]
        + [f"{name} units, by number" for name in layers[1:-1]]
        + [f"{layers[-1]}, by position in the ordering"]
    )
    panels = [
        (
            layer.masks[mask_id].cpu().numpy()[sort[l + 1]][:, sort[l]],
            names[l],
            names[l + 1],
            f"{layers[l]} → {layers[l + 1]}",
        )
        for l, layer in enumerate(model.layers)
    ]
    if model.direct is not None:
        panels.append(
            (
                model.direct.masks[mask_id].cpu().numpy()[sort[-1]][:, sort[0]],
                names[0],
                names[-1],
                "inputs → outputs, direct",
            )
        )
    reach = _dimension_reachability(model, mask_id)
    order = model.orderings[mask_id].cpu()
    panels.append(
        (
            reach[order][:, order].numpy(),
            "input dimensions, by position in the ordering",
            "output dimensions, by position",
            "which inputs reach each output",
        )
    )

    rows = -(-len(panels) // 4)
    columns = -(-len(panels) // rows)
    fig, axes = plt.subplots(
        rows, columns, figsize=(3.9 * columns, 3.7 * rows + 0.5), squeeze=False, layout="constrained"
    )
    for ax, (mask, xlabel, ylabel, name) in zip(axes.flat, panels):
        ax.imshow(mask, cmap="gray_r", vmin=0, vmax=1, aspect="auto", interpolation="antialiased")
        ax.set_title(f"{name} ({mask.shape[0]} × {mask.shape[1]})", fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(MaxNLocator(nbins=5, integer=True))
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    fig.legend(
        handles=[
            Patch(color="black", label="1: connection kept"),
            Patch(facecolor="white", edgecolor="0.5", label="0: connection masked"),
        ],
        loc="outside lower center",
        ncols=2,
        fontsize=9,
        frameon=False,
    )
    _finish(fig, title or f"MADE masks (mask {mask_id}), units sorted by connectivity number", save_path)
