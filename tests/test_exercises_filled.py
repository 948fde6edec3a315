"""An exercise notebook filled in by a learner runs end to end on the learner's code and gives the solution's numbers.

The learner's code here is correct but written otherwise than the solution (other variable names, another form of
the same computation); every check cell of the exercise notebook runs on it, then the course's answer, whose
final test losses must equal the solution notebook's to its printed digits: full-batch training from a fixed start
gives one model whatever the seed, so the spread over seeds that would allow more is zero (notebook 1)."""

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


def final_test_losses(notebook):
    """The 'Final Test Loss: X' lines the course's harness printed, in order."""
    text = "".join(
        o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    return [float(v) for v in re.findall(r"Final Test Loss: ([\d.]+)", text)]


def fill(exercise, answers):
    """The exercise notebook with each exercise cell replaced by the learner's cell defining its functions."""
    for cell in exercise.cells:
        if cell.cell_type == "code" and cell.source.startswith("# Exercise: write"):
            names = [n for n in answers if re.search(rf"^def {n}\(", cell.source, re.M)]
            assert names, f"an exercise cell defines none of {list(answers)}:\n{cell.source[:300]}"
            cell.source = "".join(answers[n] for n in names).strip() + "\n"
    return exercise


def test_notebook_1_filled_with_a_learners_own_code_runs_every_check_and_gives_the_solutions_answers():
    exercise = fill(
        nbformat.read(ROOT / "notebooks" / "exercises" / "01_histogram.ipynb", as_version=4),
        LEARNER_NOTEBOOK_1,
    )
    client = NotebookClient(
        exercise,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks" / "exercises")}},
    )
    client.execute()  # a failing check or answer raises CellExecutionError, naming the cell and the message
    solution = nbformat.read(ROOT / "notebooks" / "01_histogram.ipynb", as_version=4)
    expected, got = final_test_losses(solution), final_test_losses(exercise)
    assert len(expected) == 2 and got == pytest.approx(expected, abs=1e-4), (got, expected)
