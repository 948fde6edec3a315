"""Notebook 4's direct connections, compared at the selected training length, on the validation split.

For each dataset, the recipe notebook 4 chose (its entry in seed_spread.py: model, learning rate, budget of
epochs, patience) is trained from seed 0 twice, with and without the direct input-to-output connections, with
early stopping on the validation split (the test split is never evaluated). Each kept model's NLL of every
validation image is saved to direct_connections/ENTRY-direct.npy and ENTRY-nodirect.npy (nats per dimension), so
that the notebook prints the paired difference with its standard error over the same images.

    python -m experiments.direct_connections --threads 1            # both datasets
    python -m experiments.direct_connections mnist --threads 1

Results go to experiments/direct_connections/results.json ({"ENTRY-direct": {...}, "ENTRY-nodirect": {...}}),
each model written when done, under the lock the other scripts use; a model recorded with the script's settings
is skipped, so a rerun after an interruption goes on where it stopped, and one recorded with other settings is
refused rather than compared with a model trained otherwise.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from experiments.results_file import locked_update, read_json, refuse, write_atomically
from experiments.seed_spread import ENTRIES, check_entries_and_threads
from helpers.comparison import per_example_nll
from helpers.data import load_dataset
from helpers.devices import describe_device
from helpers.models import MADE
from helpers.training import fit, seed

HERE = Path(__file__).resolve().parent / "direct_connections"
RESULTS = HERE / "results.json"
DATASETS = ("shapes", "mnist")  # notebook 4's entries of seed_spread.py


def settings(entry, direct):
    """What the model of `entry` with or without direct connections is trained with, as the file holds it."""
    _, model_args, fit_args, _ = ENTRIES[entry]
    return json.loads(json.dumps(dict(model=dict(model_args, direct=direct), fit=fit_args, seed=0)))


def save_array(array, path):
    with open(path, "wb") as f:
        np.save(f, array)


def train(entry, direct):
    """Train one model (unless recorded with the same settings) and record it with its validation NLLs."""
    key = f"{entry}-{'direct' if direct else 'nodirect'}"
    recorded = read_json(RESULTS).get(key)
    if recorded is not None:
        wanted = settings(entry, direct)
        if {k: recorded.get(k) for k in wanted} != wanted:
            refuse(
                RESULTS,
                f"records {key} with other settings than the script's ({wanted}); delete the entry to "
                f"train it again",
            )
        print(f"{key}: recorded, skipped")
        return
    name, model_args, fit_args, _ = ENTRIES[entry]
    ds = load_dataset(name)
    seed(0)
    model = MADE(ds.shape, ds.d, **dict(model_args, direct=direct))
    start = time.perf_counter()
    result = fit(model, ds, test=False, verbose=False, **fit_args)
    nlls = per_example_nll(model, ds.valid)
    HERE.mkdir(parents=True, exist_ok=True)
    write_atomically(HERE / f"{key}.npy", lambda tmp: save_array(nlls.astype(np.float64), tmp))
    record = dict(
        settings(entry, direct),
        best_epoch=result.best_epoch,
        valid_loss=float(result.valid_losses[result.best_epoch]),
        seconds=round(time.perf_counter() - start, 1),
        device=describe_device(next(model.parameters()).device),
    )
    with locked_update(RESULTS) as results:
        results[key] = record
    print(
        f"{key}: validation NLL {record['valid_loss']:.4f} nats per dimension at epoch {record['best_epoch']}, "
        f"{record['seconds']:.0f} s",
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "entries", nargs="*", metavar="ENTRY", help=f"some of {list(DATASETS)} (default: both)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    check_entries_and_threads(parser, args, DATASETS)
    read_json(RESULTS)  # a damaged results file stops the script here, before any training
    for entry in args.entries or DATASETS:
        for direct in (True, False):
            train(entry, direct)


if __name__ == "__main__":
    main()
