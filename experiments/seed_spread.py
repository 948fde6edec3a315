"""The spread over training seeds of the models the notebooks report: the margin behind their check cells.

Each entry repeats one notebook's final fit, with the learning rate and schedule that notebook chose on
validation (written here; the notebook prints its choice), for seeds 0, 1, ..., n - 1. Seed s seeds the
initialization (`seed(s)` before the model is made) and the order of the training batches
(`loader_seed=s`); the data and their splits stay as they are. Seed 0 is the notebook's own run.

    python -m experiments.seed_spread                  # every entry, 5 seeds
    python -m experiments.seed_spread "mnist" --seeds 5 --threads 1

Results go to experiments/seed_spread/results.json ({entry: {"seeds": [...], "test_loss": [...], ...}}),
merged into the file after every fit under a lock, so an interrupted run keeps what it finished and goes on
from there, and runs in parallel (one entry each) keep each other's entries. An entry recorded with other
settings than the script's is refused, not extended, and so is a damaged file, before any training. Each seed's
device is kept in `devices` (one per seed), and `device` names them in one line.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from experiments.results_file import locked_update, read_json
from helpers.data import load_dataset
from helpers.devices import describe_device
from helpers.models import MADE
from helpers.training import fit, seed

RESULTS = Path(__file__).resolve().parent / "seed_spread" / "results.json"
MADE_2D = dict(epochs=100, refit=True)
ENTRIES = {  # entry: (dataset, model arguments, fit arguments, the notebook that reports it)
    "smiley one-hot": (
        "smiley",
        dict(hidden_sizes=[256, 256]),
        dict(MADE_2D, lr=1e-2, batch_size=256, patience=5),
        3,
    ),
    "smiley ordinal": (
        "smiley",
        dict(hidden_sizes=[256, 256], encoding="ordinal"),
        dict(MADE_2D, lr=1e-2, batch_size=256, patience=5),
        3,
    ),
    "hinton one-hot": (
        "hinton",
        dict(hidden_sizes=[256, 256]),
        dict(MADE_2D, lr=5e-4, batch_size=1024, patience=3),
        3,
    ),
    "hinton ordinal": (
        "hinton",
        dict(hidden_sizes=[256, 256], encoding="ordinal"),
        dict(MADE_2D, lr=5e-3, batch_size=1024, patience=3),
        3,
    ),
    "shapes": ("shapes", dict(hidden_sizes=[512, 512], direct=True), dict(lr=3e-3, epochs=60, patience=5), 4),
    "mnist": ("mnist", dict(hidden_sizes=[512, 512], direct=True), dict(lr=1e-3, epochs=20, patience=2), 4),
}


def read_results():
    """results.json as last written; a file that is not an object of entries stops the script, naming it."""
    return read_json(RESULTS)


def seed_devices(record):
    """The device of each seed of an entry's record, in the order of its seeds (None where not recorded). Records
    written before devices were kept per seed have one label, `device`, which is the last seed's."""
    if "devices" in record:
        return list(record["devices"])
    label = record.get("device")
    return [None] * (len(record["seeds"]) - 1) + [label] if record["seeds"] else []


def describe_devices(devices, seeds):
    """One line naming the device of every seed: "cpu (1 threads)" when all ran on it, else each device with
    its seeds."""
    groups = {}
    for s, device in zip(seeds, devices):
        groups.setdefault(device, []).append(s)
    if len(groups) == 1 and None not in groups:
        return next(iter(groups))
    return "; ".join(
        f"{'not recorded' if device is None else device} for seed{'s' if len(group) > 1 else ''} "
        f"{', '.join(map(str, group))}"
        for device, group in groups.items()
    )


def check_settings(entry, record):
    """Refuse to add seeds to a record made with other settings: it would name the old ones for all its seeds."""
    name, model_args, fit_args, _ = ENTRIES[entry]
    now = json.loads(json.dumps(dict(dataset=name, model=model_args, fit=fit_args)))  # as the file holds them
    recorded = {key: record.get(key) for key in now}
    if recorded != now:
        raise SystemExit(
            f"{RESULTS} records {entry!r} with {recorded}, but the script now sets {now}: new seeds "
            f"would be recorded under the old settings. Delete the entry from the file to run it again "
            f"with the new settings, or restore the old ones in ENTRIES"
        )


def run(entry, seeds):
    name, model_args, fit_args, notebook = ENTRIES[entry]
    recorded = read_results().get(entry)
    if recorded is not None:
        check_settings(entry, recorded)  # before any data are loaded or models trained
    ds = load_dataset(name)
    for s in range(seeds):
        if recorded is not None and s in recorded["seeds"]:
            continue
        seed(s)
        model = MADE(ds.shape, ds.d, **model_args)
        start = time.perf_counter()
        result = fit(model, ds, loader_seed=s, verbose=False, **fit_args)
        seconds = round(time.perf_counter() - start, 1)
        # merged into the file as it is now: a parallel run (one per core) may have written other entries or seeds
        with locked_update(RESULTS, read_results) as results:
            recorded = results.setdefault(
                entry,
                dict(
                    dataset=name,
                    notebook=notebook,
                    model=model_args,
                    fit=fit_args,
                    seeds=[],
                    test_loss=[],
                    best_epoch=[],
                    seconds=[],
                ),
            )
            check_settings(entry, recorded)
            if s in recorded["seeds"]:
                print(f"{entry}, seed {s}: already recorded by a parallel run, which is kept", flush=True)
                continue
            devices = seed_devices(recorded) + [describe_device(next(model.parameters()).device)]
            recorded["seeds"].append(s)
            recorded["test_loss"].append(result.test_loss)
            recorded["best_epoch"].append(result.best_epoch)
            recorded["seconds"].append(seconds)
            if ds.true_distribution is not None:
                table = model.probability_table().cpu().numpy()
                recorded.setdefault("correlation", []).append(
                    float(np.corrcoef(table.ravel(), ds.true_distribution.ravel())[0, 1])
                )
            recorded["devices"] = devices  # one per seed; `device` says them in one line, for the notebooks
            recorded["device"] = describe_devices(devices, recorded["seeds"])
        print(
            f"{entry}, seed {s}: test {result.test_loss:.4f} nats per dimension, best epoch {result.best_epoch}, "
            f"{seconds:.0f} s",
            flush=True,
        )


def check_entries_and_threads(parser, args, known):
    """Refuse entries not in `known` and a --threads below 1 (through parser.error), then set torch's threads."""
    unknown = [e for e in args.entries if e not in known]
    if unknown:
        parser.error(f"unknown entries {unknown}: choose among {', '.join(repr(e) for e in known)}")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "entries",
        nargs="*",
        metavar="ENTRY",
        help=f"some of: {', '.join(repr(e) for e in ENTRIES)} (default: all)",
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. SEEDS - 1 (default %(default)s)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error(f"--seeds must be at least 2 for a spread, got {args.seeds}")
    check_entries_and_threads(parser, args, ENTRIES)
    for entry in args.entries or ENTRIES:
        run(entry, args.seeds)


if __name__ == "__main__":
    main()
