"""The learning rates of notebook 4's MADEs, chosen on the validation split: the runs behind the notebook's choices.

For each learning rate of an entry's grid: `seed(0)`, a fresh MADE, and `fit` on the training split with early
stopping on the validation split (the model and patience of the entry in seed_spread.py), never evaluating the test
split, with a cap on epochs: for MNIST 80, four times the notebook's budget of 20; for Shapes the notebook's own 60.
A run is the same up to any epoch whatever
its cap, so each run's validation curve shows both what the notebook's budget keeps (the notebook chooses the rate
from that) and what more epochs would give. seed_spread.py then repeats the chosen recipe over seeds.

    python -m experiments.lr_selection mnist --threads 1
    python -m experiments.lr_selection shapes --threads 1
    python -m experiments.lr_selection mnist --lr 0.0005 --threads 1   # one candidate (run others in parallel)

Results go to experiments/lr_selection/results.json ({entry: {lr: {"valid_losses": [...], "best_epoch": ...}}}),
each candidate written when done; two runs may write at once (results_file.locked_update). The file is read, and
checked, before any training: a candidate recorded with the script's settings is skipped (a rerun after an
interruption goes on where it stopped), and an entry whose candidates were trained with another model, patience or
cap is refused rather than extended, since its rates would then be compared across different models.
"""

import argparse
import json
import time
from pathlib import Path

from experiments.results_file import locked_update, read_json, refuse
from experiments.seed_spread import ENTRIES, check_entries_and_threads
from helpers.data import load_dataset
from helpers.devices import describe_device
from helpers.models import MADE
from helpers.training import fit, seed

RESULTS = Path(__file__).resolve().parent / "lr_selection" / "results.json"
# entry: learning rates, cap on epochs (MNIST's four times the notebook's budget of 20; Shapes' the notebook's own 60)
GRIDS = {
    "mnist": dict(lrs=[5e-4, 1e-3, 2e-3, 5e-3], epochs=80),
    "shapes": dict(lrs=[1e-3, 3e-3, 1e-2], epochs=60),
}


def read_results():
    """results.json as last written, checked: a file that is not an object of entries stops the script, naming it."""
    results = read_json(RESULTS)
    for entry, candidates in results.items():
        for lr, record in candidates.items():
            if not isinstance(record, dict):
                refuse(
                    RESULTS, f"has {entry!r}[{lr!r}] = {record!r:.80}, not a candidate's record (an object)"
                )
    return results


def settings(entry):
    """What every candidate of `entry` is trained with, as its record holds it: the model's and fit's arguments
    (the fit's without the learning rate, which varies, and with the grid's cap on epochs)."""
    _, model_args, fit_args, _ = ENTRIES[entry]
    fit_args = {k: v for k, v in fit_args.items() if k != "lr"} | dict(epochs=GRIDS[entry]["epochs"])
    return json.loads(json.dumps(dict(model=model_args, fit=fit_args)))  # as the file holds them


def check_settings(entry, candidates):
    """Refuse to add a candidate beside recorded ones trained with other settings: the rates would be compared
    across different models, patiences or caps."""
    now = settings(entry)
    other = {
        lr: {k: record.get(k) for k in now}
        for lr, record in candidates.items()
        if {k: record.get(k) for k in now} != now
    }
    if other:
        (recorded, *_) = other.values()
        raise SystemExit(
            f"{RESULTS} records {entry!r} candidates {sorted(other)} with {recorded}, but the script now "
            f"sets {now}: a new candidate would be chosen against them across different settings. Delete "
            f"the entry from the file to run its grid again with the new settings, or restore the old "
            f"ones in ENTRIES and GRIDS"
        )


def run(entry, lr):
    """Train one candidate and record it, unless it is recorded with the same settings (then it is skipped)."""
    recorded = read_results().get(entry, {})
    check_settings(entry, recorded)  # before any data are loaded or models trained
    if repr(lr) in recorded:
        print(f"{entry}, lr={lr}: recorded with the same settings, skipped", flush=True)
        return
    name, model_args, _, _ = ENTRIES[entry]
    fit_args = settings(entry)["fit"]
    ds = load_dataset(name)
    seed(0)
    model = MADE(ds.shape, ds.d, **model_args)
    start = time.perf_counter()
    result = fit(model, ds, lr=lr, test=False, verbose=False, **fit_args)
    record = dict(
        model=model_args,
        fit=fit_args,
        valid_losses=result.valid_losses.tolist(),
        best_epoch=result.best_epoch,
        best_valid_loss=float(result.valid_losses[result.best_epoch]),
        epochs_run=len(result.valid_losses) - 1,
        seconds=round(time.perf_counter() - start, 1),
        device=describe_device(next(model.parameters()).device),
    )
    with locked_update(RESULTS, read_results) as results:  # another candidate's run may be writing
        check_settings(entry, results.setdefault(entry, {}))
        results[entry][repr(lr)] = record
    print(
        f"{entry}, lr={lr}: best validation loss {record['best_valid_loss']:.4f} nats per dimension at epoch "
        f"{record['best_epoch']} of {record['epochs_run']} run (cap {fit_args['epochs']}), {record['seconds']:.0f} s",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("entries", nargs="*", metavar="ENTRY", help=f"some of {list(GRIDS)} (default: all)")
    parser.add_argument("--lr", type=float, action="append", help="only these learning rates of the grid")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    check_entries_and_threads(parser, args, GRIDS)
    read_results()  # a damaged results file stops us here, before any training
    for entry in args.entries or GRIDS:
        lrs = [lr for lr in GRIDS[entry]["lrs"] if args.lr is None or lr in args.lr]
        if not lrs:
            parser.error(f"none of --lr {args.lr} is in {entry}'s grid {GRIDS[entry]['lrs']}")
        for lr in lrs:
            run(entry, lr)


if __name__ == "__main__":
    main()
