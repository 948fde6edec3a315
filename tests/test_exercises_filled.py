"""An exercise notebook filled in by a learner runs end to end on the learner's code and gives the solution's numbers.

The learner's code here is correct but written otherwise than the solution (other variable names, another form of
the same computation); every check cell of the exercise notebook runs on it, then the course's answer, whose
final test losses must equal the solution notebook's to its printed digits: full-batch training from a fixed start
gives one model whatever the seed, so the spread over seeds that would allow more is zero (notebooks 1 and 2;
notebook 3 in test_exercise_3_filled.py, a file of its own so that make test's two workers can share the load)."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent

LEARNER_NOTEBOOK_1 = {
    "histogram_log_prob": '''
def histogram_log_prob(logits, x):
    """log softmax(logits)[x], written as logits[x] minus the log of the normalizer."""
    log_normalizer = torch.logsumexp(logits, dim=0)
    return logits[x] - log_normalizer
''',
    "train": '''
def train(model, batches, held_out, epochs, lr):
    """My training loop: Adam, one step per batch; the held-out NLL before training and after each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def held_out_nll():
        with torch.no_grad():
            return float(model.loss(held_out))

    per_step, per_epoch = [], [held_out_nll()]
    for _epoch in range(epochs):
        for xb in batches:
            opt.zero_grad()
            nll = model.loss(xb)
            nll.backward()
            opt.step()
            per_step.append(float(nll))
        per_epoch.append(held_out_nll())
    return per_step, per_epoch
''',
    "q1_a": '''
LR = {1: 1.0, 2: 0.01}
EPOCHS = {1: 30, 2: 792}


def q1_a(train_data, test_data, d, dset_id):
    """My answer: a histogram trained with my loop, full batch."""
    seed(0)
    hist = Histogram(d)
    loader = BatchLoader(train_data, batch_size=len(train_data), shuffle=True, seed=0)
    step_losses, epoch_losses = train(hist, loader, torch.as_tensor(test_data), EPOCHS[dset_id], LR[dset_id])
    return np.asarray(step_losses), np.asarray(epoch_losses), hist.distribution()
''',
}


LEARNER_NOTEBOOK_2 = {
    "weighted_component_log_probs": '''
def weighted_component_log_probs(x, logits, means, log_scales, d):
    """My version: every bin as an interior bin, then the two edge categories replaced by their one-sided mass."""
    z = x.unsqueeze(-1).float() - means          # distance of each value to each component's mean
    inv_s = (-log_scales).exp()
    log_cdf_above = F.logsigmoid((z + 0.5) * inv_s)            # log σ(u)
    log_sf_below = F.logsigmoid(-(z - 0.5) * inv_s)            # log σ(−l) = log(1 − σ(l))
    log_bin_width = torch.log(-torch.expm1(-inv_s))            # log(1 − e^(−1/s))
    interior = log_cdf_above + log_sf_below + log_bin_width
    at_zero = (x == 0).unsqueeze(-1)
    at_top = (x == d - 1).unsqueeze(-1)
    log_mass = torch.where(at_zero, log_cdf_above, torch.where(at_top, log_sf_below, interior))
    log_weights = logits - torch.logsumexp(logits, dim=0)
    return log_mass + log_weights
''',
    "q1_b": '''
LR = {1: 0.2, 2: 0.2}
EPOCHS = {1: 441, 2: 160}


def q1_b(train_data, test_data, d, dset_id, random_seed=0):
    """My answer: the mixture trained by my own Adam loop, full batch."""
    seed(random_seed)
    mix = DiscretizedLogisticMixture(d)
    opt = torch.optim.Adam(mix.parameters(), lr=LR[dset_id])
    everything = BatchLoader(train_data, batch_size=len(train_data), shuffle=True, seed=random_seed)
    held_out = torch.as_tensor(test_data)

    def test_nll():
        with torch.no_grad():
            return mix.loss(held_out).item()

    step_losses, epoch_losses = [], [test_nll()]
    for _ in range(EPOCHS[dset_id]):
        for batch in everything:
            nll = mix.loss(batch)
            opt.zero_grad()
            nll.backward()
            opt.step()
            step_losses.append(nll.item())
        epoch_losses.append(test_nll())
    return np.array(step_losses), np.array(epoch_losses), mix.distribution()
''',
}


def final_test_losses(notebook):
    """The 'Final Test Loss: X' lines the course's harness printed, in order."""
    text = "".join(
        o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    return [float(v) for v in re.findall(r"Final Test Loss: ([\d.]+)", text)]


def fill(exercise, answers):
    """The exercise notebook with each exercise cell replaced by the learner's cell defining its functions and
    classes."""
    for cell in exercise.cells:
        if cell.cell_type == "code" and cell.source.startswith("# Exercise: write"):
            names = [n for n in answers if re.search(rf"^(def {n}\(|class {n}\b)", cell.source, re.M)]
            assert names, f"an exercise cell defines none of {list(answers)}:\n{cell.source[:300]}"
            cell.source = "".join(answers[n] for n in names).strip() + "\n"
    return exercise


def main_line(notebook):
    """The notebook up to its `## Going further` (the side studies train the package's models, not the learner's)."""
    ends = [
        i
        for i, c in enumerate(notebook.cells)
        if c.cell_type == "markdown" and c.source.startswith("## Going further")
    ]
    notebook.cells = notebook.cells[: ends[0]]
    return notebook


def run_filled(name, answers, only_main_line=False):
    """Execute the exercise notebook `name` filled with the learner's answers (with only_main_line, up to `## Going
    further`); return it and the solution (cut at the same heading)."""
    exercise = fill(nbformat.read(ROOT / "notebooks" / "exercises" / name, as_version=4), answers)
    solution = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    if only_main_line:
        exercise, solution = main_line(exercise), main_line(solution)
    client = NotebookClient(
        exercise,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks" / "exercises")}},
    )
    client.execute()  # a failing check or answer raises CellExecutionError, naming the cell and the message
    return exercise, solution


def test_notebook_1_filled_with_a_learners_own_code_runs_every_check_and_gives_the_solutions_answers():
    exercise, solution = run_filled("01_histogram.ipynb", LEARNER_NOTEBOOK_1)
    expected, got = final_test_losses(solution), final_test_losses(exercise)
    assert len(expected) == 2 and got == pytest.approx(expected, abs=1e-4), (got, expected)


def test_notebook_2_filled_with_a_learners_own_code_runs_every_check_and_gives_the_solutions_answers():
    exercise, solution = run_filled("02_discretized_logistic_mixture.ipynb", LEARNER_NOTEBOOK_2)
    expected, got = final_test_losses(solution), final_test_losses(exercise)
    assert len(expected) == 2 and got == pytest.approx(expected, abs=1e-4), (got, expected)
