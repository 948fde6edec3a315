"""The learning rate of notebook 4's MNIST MADE, chosen on the validation split: the runs behind the notebook's choice.

For each learning rate of an entry's grid: `seed(0)`, a fresh MADE, and `fit` on the training split with early
stopping on the validation split (the model and patience of the entry in seed_spread.py), never evaluating the test
split, with a cap of 80 epochs, four times the notebook's budget of 20. A run is the same up to any epoch whatever
its cap, so each run's validation curve shows both what the notebook's budget keeps (the notebook chooses the rate
from that) and what more epochs would give. seed_spread.py then repeats the chosen recipe over seeds.

    python -m experiments.lr_selection mnist --threads 1
    python -m experiments.lr_selection mnist --lr 0.0005 --threads 1   # one candidate (run others in parallel)

Results go to experiments/lr_selection/results.json ({entry: {lr: {"valid_losses": [...], "best_epoch": ...}}}),
each candidate written when done; two runs may write at once (results_file.locked_update).
"""
import argparse
import time
from pathlib import Path

from helpers.data import load_dataset
from helpers.models import MADE
from helpers.training import describe_device, fit, seed
from experiments.results_file import locked_update
from experiments.seed_spread import ENTRIES, check_entries_and_threads

RESULTS = Path(__file__).resolve().parent / "lr_selection" / "results.json"
GRIDS = {"mnist": dict(lrs=[5e-4, 1e-3, 2e-3, 5e-3], epochs=80)}   # entry: learning rates, cap on epochs


def run(entry, lr):
    name, model_args, fit_args, _ = ENTRIES[entry]
    fit_args = {k: v for k, v in fit_args.items() if k != "lr"} | dict(epochs=GRIDS[entry]["epochs"])
    ds = load_dataset(name)
    seed(0)
    model = MADE(ds.shape, ds.d, **model_args)
    start = time.perf_counter()
    result = fit(model, ds, lr=lr, test=False, verbose=False, **fit_args)
    record = dict(model=model_args, fit=fit_args, valid_losses=result.valid_losses.tolist(),
                  best_epoch=result.best_epoch, best_valid_loss=float(result.valid_losses[result.best_epoch]),
                  epochs_run=len(result.valid_losses) - 1, seconds=round(time.perf_counter() - start, 1),
                  device=describe_device(next(model.parameters()).device))
    with locked_update(RESULTS) as results:   # another candidate's run may be writing
        results.setdefault(entry, {})[repr(lr)] = record
    print(f"{entry}, lr={lr}: best validation loss {record['best_valid_loss']:.4f} nats per dimension at epoch "
          f"{record['best_epoch']} of {record['epochs_run']} run (cap {fit_args['epochs']}), {record['seconds']:.0f} s",
          flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("entries", nargs="*", metavar="ENTRY", help=f"some of {list(GRIDS)} (default: all)")
    parser.add_argument("--lr", type=float, action="append", help="only these learning rates of the grid")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    check_entries_and_threads(parser, args, GRIDS)
    for entry in args.entries or GRIDS:
        lrs = [lr for lr in GRIDS[entry]["lrs"] if args.lr is None or lr in args.lr]
        if not lrs:
            parser.error(f"none of --lr {args.lr} is in {entry}'s grid {GRIDS[entry]['lrs']}")
        for lr in lrs:
            run(entry, lr)


if __name__ == "__main__":
    main()
