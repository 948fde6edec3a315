"""The spread over training seeds of the models the notebooks report: the margin behind their check cells.

Each entry repeats one notebook's final fit, with the learning rate and schedule that notebook chose on
validation (written here; the notebook prints its choice), for seeds 0, 1, ..., n - 1. Seed s seeds the
initialization (`seed(s)` before the model is made) and the order of the training batches
(`loader_seed=s`); the data and their splits stay as they are. Seed 0 is the notebook's own run.

    python experiments/seed_spread.py                  # every entry, 5 seeds
    python experiments/seed_spread.py "mnist" --seeds 5 --threads 1

Results go to experiments/seed_spread/results.json ({entry: {"seeds": [...], "test_loss": [...], ...}}),
written after every fit, so an interrupted run keeps what it finished and goes on from there.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from helpers.data import load_dataset
from helpers.models import MADE
from helpers.training import describe_device, fit, seed
from made_mnist import write_atomically   # the sibling script: one atomic write for both

RESULTS = Path(__file__).resolve().parent / "seed_spread" / "results.json"
MADE_2D = dict(epochs=100, refit=True)
ENTRIES = {   # entry: (dataset, model arguments, fit arguments, the notebook that reports it)
    "smiley one-hot": ("smiley", dict(hidden_sizes=[256, 256]), dict(MADE_2D, lr=1e-2, batch_size=256, patience=5), 3),
    "smiley ordinal": ("smiley", dict(hidden_sizes=[256, 256], encoding="ordinal"),
                       dict(MADE_2D, lr=1e-2, batch_size=256, patience=5), 3),
    "hinton one-hot": ("hinton", dict(hidden_sizes=[256, 256]), dict(MADE_2D, lr=1e-3, batch_size=1024, patience=3), 3),
    "hinton ordinal": ("hinton", dict(hidden_sizes=[256, 256], encoding="ordinal"),
                       dict(MADE_2D, lr=5e-3, batch_size=1024, patience=3), 3),
    "shapes": ("shapes", dict(hidden_sizes=[512, 512], direct=True), dict(lr=3e-3, epochs=60, patience=5), 4),
    "mnist": ("mnist", dict(hidden_sizes=[512, 512], direct=True), dict(lr=1e-3, epochs=20, patience=2), 4),
}


def run(entry, seeds):
    name, model_args, fit_args, notebook = ENTRIES[entry]
    ds = load_dataset(name)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    record = results.setdefault(entry, dict(dataset=name, notebook=notebook, model=model_args, fit=fit_args,
                                            seeds=[], test_loss=[], best_epoch=[], seconds=[]))
    for s in range(seeds):
        if s in record["seeds"]:
            continue
        seed(s)
        model = MADE(ds.shape, ds.d, **model_args)
        start = time.perf_counter()
        result = fit(model, ds, loader_seed=s, verbose=False, **fit_args)
        record["seeds"].append(s)
        record["test_loss"].append(result.test_loss)
        record["best_epoch"].append(result.best_epoch)
        record["seconds"].append(round(time.perf_counter() - start, 1))
        if ds.true_distribution is not None:
            table = model.probability_table().cpu().numpy()
            record.setdefault("correlation", []).append(
                float(np.corrcoef(table.ravel(), ds.true_distribution.ravel())[0, 1]))
        record["device"] = describe_device(next(model.parameters()).device)
        print(f"{entry}, seed {s}: test {result.test_loss:.4f} nats per dimension, best epoch {result.best_epoch}, "
              f"{record['seconds'][-1]:.0f} s", flush=True)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(RESULTS, lambda tmp: tmp.write_text(json.dumps(results, indent=1)))


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
    parser.add_argument("entries", nargs="*", metavar="ENTRY",
                        help=f"some of: {', '.join(repr(e) for e in ENTRIES)} (default: all)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. SEEDS - 1 (default %(default)s)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error(f"--seeds must be at least 2 for a spread, got {args.seeds}")
    check_entries_and_threads(parser, args, ENTRIES)
    for entry in args.entries or ENTRIES:
        run(entry, args.seeds)


if __name__ == "__main__":
    main()
