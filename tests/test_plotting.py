import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.collections import LineCollection
from test_download import files_under

from helpers import plotting
from helpers.models import MADE, DiscretizedLogisticMixture
from helpers.models.masks import masks_from_numbers, reachability
from helpers.training import BatchLoader, TrainingDiverged, TrainingResult, train_epochs

PNG_HEADER = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(0)
IMAGES = (RNG.random((12, 6, 6)) > 0.5).astype(np.float32)
DATA = RNG.integers(0, 10, 200)
PROBS = np.full(10, 0.1)
TABLE = RNG.random((8, 8))
TABLE /= TABLE.sum()
RESULT = TrainingResult(np.linspace(1.0, 0.5, 30), np.linspace(1.2, 0.6, 11), best_epoch=7, test_loss=0.62)
# Diverged at batch 5 of epoch 4, with 10 batches an epoch: 3 full epochs and 4 batches of the fourth.
DIVERGED = TrainingDiverged(
    "the training loss became nan", np.linspace(1.0, 0.5, 34), np.linspace(1.2, 0.6, 4), 4, 5
)


def small_made(**kwargs):
    return MADE((3,), 2, [5, 5], ordering=[2, 0, 1], seed=1, **kwargs)


def mixture(**parameters):
    model = DiscretizedLogisticMixture(10, 3)
    with torch.no_grad():
        for name, value in {"logits": [0.5, -0.2, 0.1], **parameters}.items():
            getattr(model, name).copy_(torch.tensor(value))
    return model


CALLS = {  # every function, with inputs it accepts
    "plot_training": lambda **kw: plotting.plot_training(RESULT, **kw),
    "plot_training_log_epochs": lambda **kw: plotting.plot_training(
        RESULT, log_epochs=True, ylim=(0.4, 1.3), **kw
    ),
    "plot_training_without_validation": lambda **kw: plotting.plot_training(
        TrainingResult(np.ones(5), []), **kw
    ),
    "plot_training_diverged": lambda **kw: plotting.plot_training(DIVERGED, **kw),
    "plot_1d_distribution": lambda **kw: plotting.plot_1d_distribution(DATA, {"uniform": PROBS}, **kw),
    "plot_1d_distribution_data_only": lambda **kw: plotting.plot_1d_distribution(DATA, d=12, **kw),
    "plot_mixture": lambda **kw: plotting.plot_mixture(DATA, mixture(), **kw),
    "plot_2d_distributions": lambda **kw: plotting.plot_2d_distributions(
        {"true": TABLE, "learned": TABLE.T}, **kw
    ),
    "plot_image_grid": lambda **kw: plotting.plot_image_grid(IMAGES, nrow=4, **kw),
    "plot_image_rows": lambda **kw: plotting.plot_image_rows(
        {"a": IMAGES[:10], "b": IMAGES[:3]}, captions={"b": ["x", "y", "z"]}, **kw
    ),
    "plot_made_connectivity": lambda **kw: plotting.plot_made_connectivity(small_made(direct=True), **kw),
    "plot_made_masks": lambda **kw: plotting.plot_made_masks(
        MADE((6, 6), 2, [40, 30], seed=0, direct=True), **kw
    ),
}


@pytest.fixture
def shown(monkeypatch):
    """The figures the plotting functions show, captured when they call plt.show (before they close them)."""
    figures = []
    monkeypatch.setattr(plt, "show", lambda *args, **kwargs: figures.append(plt.gcf()))
    return figures


@pytest.fixture(autouse=True)
def no_figure_left_open():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a plotting function left a figure open"


@pytest.mark.parametrize("name", CALLS)
def test_every_function_saves_a_png_and_closes_its_figure(name, tmp_path, shown):
    path = tmp_path / f"{name}.png"
    CALLS[name](title="a title", save_path=path)
    assert path.read_bytes()[:8] == PNG_HEADER
    assert len(shown) == 1 and plt.get_fignums() == []


@pytest.mark.parametrize("name", CALLS)
def test_saving_into_a_missing_folder_names_it_before_drawing(name, tmp_path):
    folder = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match="no_such_folder.* does not exist"):
        CALLS[name](save_path=folder / "figure.png")
    assert not folder.exists()


@pytest.mark.parametrize("name", CALLS)
def test_saving_to_a_folder_or_an_unknown_format_is_refused_before_drawing(name, tmp_path, monkeypatch):
    monkeypatch.setattr(plt, "subplots", None)  # drawing would fail on it with a TypeError
    with pytest.raises(
        IsADirectoryError, match=f"{tmp_path}: it is a folder; name the file .* e.g. .*figure.png"
    ):
        CALLS[name](save_path=tmp_path)
    for path, found in [
        ("figure.pgn", "the extension '.pgn' is no format matplotlib writes"),
        ("figure", "it has no extension"),
    ]:
        with pytest.raises(ValueError, match=f"{found}; end it with one of .*\\.png"):
            CALLS[name](save_path=tmp_path / path)
    assert files_under(tmp_path) == []


def test_a_save_path_extension_in_capitals_is_accepted(tmp_path, shown):
    plotting.plot_1d_distribution(DATA, PROBS, save_path=tmp_path / "figure.PNG")
    assert (tmp_path / "figure.PNG").read_bytes()[:8] == PNG_HEADER


def test_many_figures_neither_warn_nor_stay_open():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns (RuntimeWarning) beyond 20 open figures
        for _ in range(25):
            plotting.plot_1d_distribution(DATA, PROBS)
    assert plt.get_fignums() == []


# --- 18: image grids --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images, match",
    [
        (
            np.full((4, 5, 5), 255, dtype=np.uint8),
            r"values in \[0, 1\], got values in \[255, 255\].*divide 0-255 images",
        ),
        (RNG.integers(0, 4, (4, 5, 5)), r"values in \[0, 1\].*categories 0 .. d - 1 .* by d - 1"),
        (np.full((4, 5, 5), np.nan), r"values in \[0, 1\]"),
        (
            np.zeros((5, 5)),
            r"shape \(N, H, W\), got one image of shape \(5, 5\): pass images\[None\] for one image",
        ),
        (np.zeros((4, 1, 5, 5)), r"drop the channel axis with images\[:, 0\]"),
        (np.zeros((0, 5, 5)), r"non-empty array of shape \(N, H, W\)"),
    ],
)
def test_image_grid_rejects_values_outside_0_1_and_wrong_shapes(images, match):
    with pytest.raises(ValueError, match=match):
        plotting.plot_image_grid(images)


def test_image_grid_takes_tensors_and_bools(shown):
    plotting.plot_image_grid(torch.from_numpy(IMAGES > 0.5), nrow=3)
    assert len(shown) == 1


# --- 19: empty inputs and mismatched lengths -----------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: plotting.plot_1d_distribution(np.array([], dtype=int), PROBS),
            "non-empty 1-D array of integer",
        ),
        (
            lambda: plotting.plot_1d_distribution(DATA.astype(float), PROBS),
            "integer categories, got .* dtype float64",
        ),
        (
            lambda: plotting.plot_1d_distribution(np.r_[DATA, 12], PROBS),
            r"values in \[0, 12\], outside .* \[0, 9\]",
        ),
        (
            lambda: plotting.plot_1d_distribution(np.r_[DATA, -1]),
            r"values in \[-1, 9\], outside the categories 0, 1, 2",
        ),
        (
            lambda: plotting.plot_1d_distribution(DATA, d=5),
            r"values in \[0, 9\], outside .* \[0, 4\] \(d = 5\)",
        ),
        (
            lambda: plotting.plot_1d_distribution(np.r_[DATA, 3_000_000]),
            "largest value is 3000000, so the plot would cover 3000001 categories, more than the 1000 .* pass d",
        ),
        (
            lambda: plotting.plot_1d_distribution(np.r_[DATA, 10**9], d=10**9 + 1),
            "d = 1000000001 categories are more",
        ),
        (
            lambda: plotting.plot_1d_distribution(DATA, np.full(2000, 1 / 2000)),
            "d = 2000 categories are more",
        ),
        (
            lambda: plotting.plot_1d_distribution(DATA, {"a": PROBS, "b": np.full(12, 1 / 12)}),
            r"different lengths \{'a': 10, 'b': 12\}",
        ),
        (
            lambda: plotting.plot_1d_distribution(DATA, PROBS, d=12),
            "d = 12 but the probabilities cover 10 categories",
        ),
        (
            lambda: plotting.plot_1d_distribution(DATA, np.log(PROBS)),
            r"probabilities \(finite and >= 0\).*exponentiate",
        ),
        (lambda: plotting.plot_1d_distribution(DATA, 2 * PROBS), "sums to 2, not 1"),
        (lambda: plotting.plot_1d_distribution(DATA, np.array([])), "non-empty 1-D array of probabilities"),
        (lambda: plotting.plot_1d_distribution(DATA, {}), "probs is an empty dict"),
        (
            lambda: plotting.plot_mixture(np.r_[DATA, 10], mixture()),
            r"outside the categories \[0, 9\] \(d = 10\)",
        ),
        (lambda: plotting.plot_mixture(np.array([], dtype=int), mixture()), "non-empty"),
        (
            lambda: plotting.plot_made_masks(small_made(), mask_id=1),
            r"mask_id .* must be an integer in \[0, 0\]",
        ),
        (
            lambda: plotting.plot_made_connectivity(small_made(), mask_id=-1),
            r"mask_id .* must be an integer in \[0, 0\]",
        ),
        (lambda: plotting.plot_2d_distributions({}), "non-empty dict"),
        (
            lambda: plotting.plot_2d_distributions({"true": TABLE, "learned": TABLE[:5] / TABLE[:5].sum()}),
            r"different shapes .*\(8, 8\).*\(5, 8\)",
        ),
        (
            lambda: plotting.plot_2d_distributions({"true": np.zeros((0, 3))}),
            r"non-empty 2-D table .* shape \(0, 3\)",
        ),
        (
            lambda: plotting.plot_2d_distributions({"true": TABLE[0]}),
            r"tables\['true'\] must be a non-empty 2-D table",
        ),
        (
            lambda: plotting.plot_2d_distributions({"true": -TABLE}),
            r"tables\['true'\] must hold probabilities \(finite",
        ),
        (
            lambda: plotting.plot_2d_distributions({"true": TABLE, "counts": 6400 * TABLE}),
            r"tables\['counts'\] sums to 6400, not 1: pass probabilities, not counts",
        ),
        (
            lambda: plotting.plot_2d_distributions({"true": np.full((2, 2), np.nan)}),
            r"must hold probabilities \(finite",
        ),
        (
            lambda: plotting.plot_mixture(DATA, mixture(means=[1.0, np.nan, 5.0])),
            r"the model's means hold NaN or infinite",
        ),
        (
            lambda: plotting.plot_mixture(DATA, mixture(logits=[np.nan] * 3)),
            r"the model's logits hold NaN .* diverged training",
        ),
        (lambda: plotting.plot_image_rows({}), "non-empty dict"),
        (
            lambda: plotting.plot_image_rows({"a": IMAGES[:4]}, captions={"a": ["x", "y"]}),
            r"captions\['a'\] has 2 captions for the 4 images of that row",
        ),
        (
            lambda: plotting.plot_image_rows({"a": IMAGES[:4]}, captions={"b": ["x"] * 4}),
            r"captions\['b'\] names no row",
        ),
        (
            lambda: plotting.plot_image_rows({"a": IMAGES[:4], "b": IMAGES[0]}),
            r"rows\['b'\] .* pass images\[None\]",
        ),
        (
            lambda: plotting.plot_image_rows({"a": 255 * IMAGES[:4]}),
            r"rows\['a'\] must have values in \[0, 1\]",
        ),
        (lambda: plotting.plot_image_rows({"a": IMAGES[:0]}), r"rows\['a'\] must be a non-empty array"),
        (
            lambda: plotting.plot_training(TrainingResult(np.array([]), np.array([1.0, 0.9]))),
            "at least one training loss",
        ),
        (
            lambda: plotting.plot_training(TrainingResult(np.ones(7), np.ones(4))),
            "7 training losses and 4 validation losses: expected one validation loss before training and one per epoch",
        ),
        (lambda: plotting.plot_training(TrainingResult(np.ones(6), np.ones(1))), "1 validation losses"),
        (
            lambda: plotting.plot_training(TrainingResult(np.ones(6), np.ones(4), best_epoch=5)),
            r"result.best_epoch .* must be an integer in \[0, 3\]",
        ),
        (
            lambda: plotting.plot_training(TrainingResult(np.ones(6), np.array([]), best_epoch=1)),
            "no validation losses",
        ),
        (
            lambda: plotting.plot_training(
                TrainingResult(np.ones(6), np.ones(4), best_epoch=0), log_epochs=True
            ),
            "best_epoch is 0 .* log_epochs=False",
        ),
        (
            lambda: plotting.plot_training(TrainingResult(np.ones(6), np.ones(4), 2, float("nan"))),
            "test_loss must be",
        ),
    ],
)
def test_empty_or_mismatched_inputs_raise_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_plot_training_refuses_the_old_call_with_the_losses_unpacked():
    with pytest.raises(TypeError, match=r"call plot_training\(result\), not plot_training\(\*result\)"):
        plotting.plot_training(*RESULT)


# --- image rows: readable on GitHub --------------------------------------------------------------


def test_image_rows_refuse_more_than_12_columns():
    plt.close("all")
    with pytest.raises(ValueError, match="13 images, more than 12 columns .* split the rows"):
        plotting.plot_image_rows({"a": np.zeros((13, 4, 4))})


def test_image_rows_captions_are_legible(shown):
    plotting.plot_image_rows(
        {"sample": IMAGES[:10], "nearest": IMAGES[:10]}, captions={"nearest": [f"H = {h}" for h in range(10)]}
    )
    labels = [ax.xaxis.label for ax in shown[0].axes if ax.get_xlabel()]
    assert [label.get_text() for label in labels] == [f"H = {h}" for h in range(10)]
    assert min(label.get_fontsize() for label in labels) >= 8


# --- what the figures show ------------------------------------------------------------------------


def legend_texts(figure):
    legends = [ax.get_legend() for ax in figure.axes if ax.get_legend()] + figure.legends
    return [text.get_text() for legend in legends for text in legend.get_texts()]


def test_training_curves_mark_the_selected_epoch_and_the_test_loss(shown):
    plotting.plot_training(RESULT)
    ax = shown[0].axes[0]
    texts = legend_texts(shown[0])
    assert "selected epoch (7)" in texts and "test (selected model):\n0.6200" in texts
    test_marker = [line for line in ax.get_lines() if line.get_label().startswith("test")][0]
    assert test_marker.get_xydata().tolist() == [[7.0, 0.62]]
    train, valid = ax.get_lines()[:2]
    assert train.get_xdata()[-1] == 10 and len(train.get_xdata()) == 30  # batches on the epoch axis
    assert valid.get_xdata().tolist() == list(range(11))  # epoch 0, before training, included


def test_course_losses_take_the_tensors_a_training_loop_appends(shown):
    w = torch.ones((), requires_grad=True)
    plotting.plot_losses([w * v for v in (3.0, 2.0, 1.5, 1.0)], torch.tensor([3.5, 2.5, 1.2]))
    train, test = shown[0].axes[0].get_lines()
    assert train.get_ydata().tolist() == [3.0, 2.0, 1.5, 1.0] and test.get_xdata().tolist() == [0, 1, 2]


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_a_diverged_run_is_plotted_with_its_last_epochs_first_batches(shown):
    plotting.plot_training(DIVERGED)
    lines = lines_by_label(shown[0].axes[0])
    train = lines["train (per batch)"].get_xdata()
    assert len(train) == 34 and train[9] == 1 and train[-1] == pytest.approx(3.4)  # 10 batches an epoch
    assert lines["validation (before training,\nthen per epoch)"].get_xdata().tolist() == [0, 1, 2, 3]
    assert lines["diverged (epoch 4,\nbatch 5)"].get_xdata() == pytest.approx([3.5, 3.5])
    assert shown[0].axes[0].get_xlabel() == "epoch"


@pytest.mark.parametrize("epoch", [1, 2])
def test_a_run_whose_validation_loss_diverged_is_plotted_to_the_end_of_that_epoch(epoch, shown):
    """Full-batch training whose validation loss overflows after `epoch`: TrainingDiverged with batch None."""

    class BadValidation(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.logits, self.evaluations = torch.nn.Parameter(torch.zeros(3)), 0

        def loss(self, x):
            self.evaluations += not self.training
            bad = not self.training and self.evaluations == epoch + 1
            return -torch.log_softmax(self.logits, 0)[x].mean() * (float("inf") if bad else 1.0)

    data = BatchLoader(np.array([0, 1, 1, 2]), 4)
    with pytest.raises(TrainingDiverged) as error:
        train_epochs(BadValidation(), data, data, 5, 0.1, progress=False)
    assert error.value.batch is None and error.value.epoch == epoch
    plotting.plot_training(error.value)
    lines = lines_by_label(shown[0].axes[0])
    assert lines["train (full batch,\none step per epoch)"].get_xdata().tolist() == list(range(1, epoch + 1))
    assert lines["validation (before training,\nthen per epoch)"].get_xdata().tolist() == list(range(epoch))
    assert lines[f"diverged (validation\nafter epoch {epoch})"].get_xdata() == pytest.approx([epoch, epoch])
    assert shown[0].axes[0].get_xlabel() == "epoch"


@pytest.mark.parametrize("valid_losses, validation_at", [([1.2], [0]), ([], None)])
def test_a_run_diverged_in_its_first_epoch_or_unvalidated_is_plotted_by_batch(
    valid_losses, validation_at, shown
):
    plotting.plot_training(TrainingDiverged("diverged", np.ones(6), valid_losses, 1, 7))
    lines = lines_by_label(shown[0].axes[0])
    assert lines["train (per batch)"].get_xdata().tolist() == [1, 2, 3, 4, 5, 6]
    assert lines["diverged (epoch 1,\nbatch 7)"].get_xdata() == pytest.approx([7, 7])
    validation = lines.get("validation (before training,\nthen per epoch)")
    assert (None if validation is None else validation.get_xdata().tolist()) == validation_at
    assert shown[0].axes[0].get_xlabel() == "batch"


def test_a_run_diverged_at_its_first_batch_says_so():
    with pytest.raises(
        ValueError, match=r"at least one training loss.*\(the training diverged at its first batch\)"
    ):
        plotting.plot_training(TrainingDiverged("diverged", [], [1.2], 1, 1))


def test_log_epoch_axis_leaves_out_epoch_0(shown):
    full_batch = TrainingResult(
        np.linspace(2, 1, 1000), np.linspace(3, 1.1, 1001), best_epoch=900, test_loss=1.2
    )
    plotting.plot_training(full_batch, log_epochs=True)
    ax = shown[0].axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_lines()[1].get_xdata()[0] == 1 and ax.get_xlim()[0] == 1


def test_1d_axis_spans_the_categories_with_integer_ticks(shown):
    plotting.plot_1d_distribution(DATA, d=100)
    plotting.plot_1d_distribution(DATA, np.full(100, 0.01))
    for figure in shown:
        ax = figure.axes[0]
        assert ax.get_xlim() == (-0.5, 99.5)
        ticks = [t for t in ax.get_xticks() if -0.5 <= t <= 99.5]
        assert all(t == int(t) for t in ticks) and 4 <= len(ticks) <= 11


def test_mixture_components_add_up_and_show_their_parameters(shown):
    model = mixture()
    plotting.plot_mixture(DATA, model)
    texts = legend_texts(shown[0])
    weights = model.component_distributions().sum(1)
    means, scales = model.means.tolist(), model.log_scales.exp().tolist()
    for i in range(3):
        assert f"π = {weights[i]:.2f}, μ = {means[i]:.1f}, s = {scales[i]:.2g}" in texts
    assert "mixture p(x)" in texts and "train data\n(200 examples)" in texts
    assert shown[0].axes[0].get_legend().get_title().get_text() == "3 components, 9 parameters"


def test_the_data_are_labelled_as_what_they_are(shown):
    plotting.plot_1d_distribution(DATA, PROBS, data_label="train + valid data")
    plotting.plot_mixture(DATA, mixture(), data_label="train + valid data")
    for figure in shown:
        assert "train + valid data\n(200 examples)" in legend_texts(figure)


def test_full_batch_training_is_not_labelled_per_batch(shown):
    plotting.plot_training(TrainingResult(np.linspace(2, 1, 50), np.linspace(3, 1.1, 51), best_epoch=40))
    plotting.plot_training(RESULT)  # 3 batches an epoch
    assert "train (full batch,\none step per epoch)" in lines_by_label(shown[0].axes[0])
    assert "train (per batch)" in lines_by_label(shown[1].axes[0])


def test_2d_panels_can_share_one_colour_scale(shown):
    plotting.plot_2d_distributions(
        {"true": TABLE, "half as bright": (TABLE + TABLE.mean()) / 2}, shared_scale=True
    )
    images = [ax.images[0] for ax in shown[0].axes if ax.images]
    assert [im.norm.vmax for im in images] == [np.percentile(TABLE, 99.5)] * 2


def test_2d_panels_have_their_own_clipped_colour_scale(shown):
    noisy = TABLE.copy()
    noisy[0, 0] = 1.0  # one outlier would dim a shared scale
    noisy /= noisy.sum()
    plotting.plot_2d_distributions({"true": TABLE, "noisy": noisy})
    images = [ax.images[0] for ax in shown[0].axes if ax.images]
    assert [im.norm.vmax for im in images] == [np.percentile(TABLE, 99.5), np.percentile(noisy, 99.5)]
    assert len(shown[0].axes) == 4  # two panels, two colour bars


def drawn_connections(figure):
    return sum(
        len(c.get_segments())
        for ax in figure.axes
        for c in ax.collections
        if isinstance(c, LineCollection) and c.get_gid() == "connections"
    )


@pytest.mark.parametrize(
    "model",
    [
        small_made(),
        small_made(direct=True),
        MADE((4,), 2, [6, 4, 5], ordering="random", seed=3),
        MADE((3,), 3, [4, 4], seed=0),  # one-hot: 9 input and 9 output units
        MADE((3,), 4, [5], seed=0, encoding="ordinal", num_masks=2),
    ],
)
def test_connectivity_draws_one_line_per_kept_weight(model, shown):
    mask_id = model.num_masks - 1
    plotting.plot_made_connectivity(model, mask_id=mask_id)
    expected = sum(int(layer.masks[mask_id].sum()) for layer in model.layers)
    if model.direct is not None:
        expected += int(model.direct.masks[mask_id].sum())
    assert drawn_connections(shown[0]) == expected
    texts = [t.get_text() for t in shown[0].axes[0].texts]
    numbers = model.numbers(mask_id)
    in_units, out_units = (
        numbers[0].repeat_interleave(model.in_units),
        numbers[0].repeat_interleave(model.out_units),
    )
    circles = [int(t) for t in texts if t.isdigit()]  # each unit's number, inputs to outputs
    assert circles == torch.cat([in_units, *numbers[1:], out_units]).tolist()


def test_connectivity_labels_the_conditionals_of_the_ordering(shown):
    plotting.plot_made_connectivity(small_made())  # ordering [2, 0, 1]
    texts = [t.get_text() for t in shown[0].axes[0].texts]
    assert {"$x_{0}$", "$x_{1}$", "$x_{2}$"} <= set(texts)
    assert {"$p(x_{2})$", r"$p(x_{0} \mid x_{2})$", r"$p(x_{1} \mid x_{2}, x_{0})$"} <= set(texts)


@pytest.mark.parametrize("model", [MADE((13,), 2, [5]), MADE((4,), 2, [13]), MADE((5,), 3, [4])])
def test_connectivity_refuses_a_model_too_large_to_draw(model):
    with pytest.raises(
        ValueError, match=r"too many to draw legibly \(at most 12 a layer\): draw a smaller model"
    ):
        plotting.plot_made_connectivity(model)


def test_masks_are_staircases_and_their_product_strictly_lower_triangular(shown):
    model = MADE((5, 5), 2, [30, 20], ordering="random", seed=2, direct=True)
    plotting.plot_made_masks(model)
    panels = [ax for ax in shown[0].axes if ax.images]
    assert len(panels) == len(model.layers) + 2  # the layers, the direct path, the product
    for ax in panels[:-1]:  # sorted: every row is 1 ... 1 0 ... 0 and rows only gain ones downwards
        mask = np.asarray(ax.images[0].get_array(), dtype=int)
        assert (np.diff(mask, axis=1) <= 0).all() and (np.diff(mask, axis=0) >= 0).all()
    reach = np.asarray(panels[-1].images[0].get_array())
    assert reach.shape == (25, 25)
    assert not np.triu(reach).any()
    assert reach[np.tril_indices(25, -1)].all()  # the direct path connects every earlier input
    order = model.orderings[0]
    expected = (
        reachability(masks_from_numbers(model.numbers(0)))
        | masks_from_numbers(model.numbers(0)[:1])[0].bool()
    )
    np.testing.assert_array_equal(reach, expected[order][:, order].numpy())
    assert panels[0].get_xlabel() == "inputs, by position in the ordering"


def test_plot_mixture_refuses_another_model():
    with pytest.raises(TypeError, match="model must be a DiscretizedLogisticMixture, got MADE"):
        plotting.plot_mixture(DATA, small_made())


def reachability_panel(shown):
    return np.asarray([ax for ax in shown[-1].axes if ax.images][-1].images[0].get_array())


@pytest.mark.parametrize("path", ["direct", "hidden"])
def test_the_reachability_panel_is_computed_from_the_models_own_masks(path, shown):
    """A model whose masks let a dimension see itself is drawn with that dimension on the diagonal, not as the
    clean triangle its connectivity numbers promise."""
    model = MADE((3, 3), 2, [20], ordering="random", seed=0, direct=path == "direct")
    first = int(model.orderings[0][0])  # the dimension at position 1: every hidden unit reads it
    with torch.no_grad():
        if path == "direct":
            model.direct.masks[0, first, first] = 1
        else:
            model.layers[-1].masks[0, first, 0] = 1  # its output reads hidden unit 0, which reads it
    plotting.plot_made_masks(model)
    reach = reachability_panel(shown)
    assert reach[0, 0] == 1  # the first position's output sees its own input
    assert not np.triu(reach, 1)[1:].any()  # every other output only earlier inputs


def test_the_reachability_panel_groups_the_units_of_each_dimension(shown):
    """d > 2: the masks are between units (d per dimension at the input and output); the panel is between dimensions."""
    for encoding in ("one-hot", "ordinal"):
        model = MADE((3,), 4, [16, 8], ordering="random", seed=3, direct=True, encoding=encoding)
        plotting.plot_made_masks(model, mask_id=0)
        numbers = model.numbers(0)
        expected = reachability(masks_from_numbers(numbers)) | masks_from_numbers(numbers[:1])[0].bool()
        order = model.orderings[0]
        np.testing.assert_array_equal(reachability_panel(shown), expected[order][:, order].numpy())
