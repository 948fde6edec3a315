"""Figures of the notebooks, one job per function. Each shows the figure inline and, given
`save_path`, also writes it to that file."""
import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid

NLL_LABEL = "NLL (nats per dimension)"


def _finish(fig, title, save_path):
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if save_path is not None:
        fig.savefig(save_path, dpi=120, bbox_inches="tight")
    plt.show()


def plot_training(train_losses, test_losses, title=None, save_path=None, ylim=None):
    """Train loss per batch and test loss per epoch on one epoch axis.

    `test_losses[0]` is the loss before training (epoch 0); `test_losses[k]` follows epoch k.
    `ylim` = (bottom, top) zooms in on the end of training, where the first epochs' losses would squash it.
    """
    epochs = len(test_losses) - 1
    fig, ax = plt.subplots(figsize=(6.4, 4))
    if len(train_losses):
        ax.plot(np.arange(1, len(train_losses) + 1) * epochs / len(train_losses), train_losses,
                label="train (per batch)", alpha=0.7)
    ax.plot(np.arange(epochs + 1), test_losses, "o-" if epochs <= 50 else "-", label="test (per epoch)")
    ax.set_xlabel("epoch")
    ax.set_ylabel(NLL_LABEL)
    ax.set_ylim(ylim)
    ax.legend()
    _finish(fig, title, save_path)


def plot_1d_distribution(train_data, probs=None, title=None, save_path=None):
    """The histogram of the training data, with learned distributions over it.

    `probs`: None (data only), the d probabilities of one model, or {label: probabilities} for several.
    """
    if probs is not None and not isinstance(probs, dict):
        probs = {"model": probs}
    d = len(next(iter(probs.values()))) if probs else int(np.max(train_data)) + 1
    fig, ax = plt.subplots(figsize=(6.4, 4))
    frequencies = np.bincount(np.asarray(train_data), minlength=d) / len(train_data)
    ax.bar(np.arange(d), frequencies, width=1.0, alpha=0.4, label="train data")
    for i, (label, p) in enumerate((probs or {}).items()):
        ax.step(np.arange(d), p, where="mid", color=f"C{i + 1}", label=label)
    ax.set_xlabel("x")
    ax.set_ylabel("probability")
    ax.legend()
    _finish(fig, title, save_path)


def plot_2d_distributions(tables, title=None, save_path=None):
    """Tables p(x0 = row, x1 = column) side by side, e.g. {"true": p, "learned": q}, on one colour scale."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4 * len(tables), 4.2), squeeze=False)
    vmax = max(float(np.max(t)) for t in tables.values())
    for ax, (name, table) in zip(axes[0], tables.items()):
        ax.imshow(table, vmin=0, vmax=vmax, interpolation="nearest")  # one block per cell, no smoothing
        ax.set_title(name)
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_0$")
    _finish(fig, title, save_path)


def plot_image_grid(images, nrow=10, title=None, save_path=None):
    """Images (N, H, W) with values in [0, 1] (binary images included) as one grid."""
    images = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    grid = make_grid(images.unsqueeze(1), nrow=nrow, padding=1, pad_value=0.5)
    fig, ax = plt.subplots(figsize=(min(12, 0.6 * nrow + 1), min(12, 0.6 * -(-len(images) // nrow) + 1)))
    ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    _finish(fig, title, save_path)


def plot_image_rows(rows, captions=None, title=None, save_path=None):
    """Images in labelled rows, one column per example: {row label: images (N, H, W) in [0, 1]}.

    For images to compare column by column: samples over their nearest training images, or
    originals, their given part and completions. `captions` ({row label: N strings}) go under
    that row's images.
    """
    rows = {label: np.asarray(images, dtype=np.float32) for label, images in rows.items()}
    n = max(len(images) for images in rows.values())
    label_width = max(len(label) for label in rows) * 0.09
    fig, axes = plt.subplots(len(rows), n, squeeze=False,
                             figsize=(min(16, 0.62 * n + label_width), 0.7 * len(rows) + 0.3))
    for r, (label, images) in enumerate(rows.items()):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(c < len(images))   # a thin frame: white images on white paper
            ax.spines[:].set_color("0.6")
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                if captions and label in captions:
                    ax.set_xlabel(captions[label][c], fontsize=7, labelpad=1)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    _finish(fig, title, save_path)
