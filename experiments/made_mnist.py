"""The MADE paper's binarized MNIST experiments (Germain et al. 2015, section 6.2), resumable.

Figure 2 of the paper: one hidden layer of 500 units, test NLL against the number K of masks used in
training. Each configuration here is one model: `1x500-K8-random` has K = 8 masks, each with its own
random ordering and connectivity (the paper's setting); `-natural` keeps the raster ordering for
every mask (connectivity-agnostic training only). The `8000` configurations are Table 6's width, a
job for a GPU. All have direct input-to-output connections and ReLU, train on the 50000 training
images in minibatches of 100, cycle through their masks one per update, and are early-stopped on
the validation NLL of the K-mask mixture (the model's eval-mode loss), with a look-ahead of 30
epochs or a wall-time budget, whichever comes first. The state with the best validation NLL is
evaluated once on the test images, as the exact mixture of all its K masks (and of its first k).

    python experiments/made_mnist.py select                 # optimizer and learning rate, on validation
    python experiments/made_mnist.py run 1x500-K1-random 1x500-K2-random --minutes 45
    python experiments/made_mnist.py list

`select` trains short probes of each candidate optimizer and learning rate and keeps the one with
the lowest validation NLL; `run` uses it. Each epoch ends with a checkpoint in
experiments/made_mnist/checkpoints/ (git-ignored), so an interrupted run resumes where it stopped,
with the same batches, and a run stopped by its time budget goes on when it is run again. Results go to experiments/made_mnist/results.json, which
notebooks/05_made_paper_reproduction.ipynb reads; every field is read from the objects that ran.
"""
import argparse
import contextlib
import fcntl
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from helpers.data import load_dataset
from helpers.models import MADE
from helpers.training import BatchLoader, default_device, describe_device, evaluate, train_epochs

HERE = Path(__file__).resolve().parent / "made_mnist"
RESULTS = HERE / "results.json"
CHECKPOINTS = HERE / "checkpoints"
D = 784

SETUP = dict(batch_size=100, patience=30, max_epochs=1000, direct=True, seed=0)
CONFIGS = {f"{len(hidden)}x{hidden[0]}-K{k}-{ordering}": dict(hidden_sizes=hidden, num_masks=k, ordering=ordering)
           for hidden in ([500], [8000], [8000, 8000]) for k in (1, 2, 4, 8, 16, 32, 64)
           for ordering in ("random", "natural")}
# `select`: the candidates (the paper tried Adagrad at these rates) and the probe models they are tried on.
CANDIDATES = [("Adam", 1e-3), ("Adam", 3e-3), ("Adagrad", 0.1), ("Adagrad", 0.05), ("Adagrad", 0.01), ("Adagrad", 0.005)]
PROBES, PROBE_EPOCHS = ("1x500-K1-random", "1x500-K8-random"), 15


def make_model(name):
    config = CONFIGS[name]
    return MADE((28, 28), 2, config["hidden_sizes"], ordering=None if config["ordering"] == "natural" else "random",
                num_masks=config["num_masks"], seed=SETUP["seed"], direct=SETUP["direct"])


def make_optimizer(model, optimizer, lr):
    if optimizer == "Adagrad":
        return torch.optim.Adagrad(model.parameters(), lr=lr, eps=1e-6)   # the paper's epsilon
    return torch.optim.Adam(model.parameters(), lr=lr)


def describe_run(model, optimizer):
    """The labels of a run, read from the objects that run it."""
    natural = bool((model.orderings == torch.arange(model.D, device=model.device)).all())
    return dict(hidden_sizes=list(model.hidden_sizes), num_masks=model.num_masks,
                ordering="natural" if natural else "random", direct=model.direct is not None,
                optimizer=type(optimizer).__name__, lr=optimizer.defaults["lr"])


def nll_per_image(model, images, n_masks, batch_size=1000):
    """Mean NLL in nats per image of the mixture of the model's first n_masks masks."""
    model.eval()
    with torch.no_grad():
        total = sum(-model.log_prob(torch.as_tensor(images[i:i + batch_size]).to(model.device), n_masks=n_masks)
                    .sum().item() for i in range(0, len(images), batch_size))
    return total / len(images)


# --- files: results.json and checkpoints, each replaced whole or not at all ---------------------------

def write_atomically(path, write):
    """`write(tmp)` into a temporary file beside `path`, then put it in place: a crash leaves the old file
    whole, and a failed write leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_results():
    """The results dict as last written (each write replaces the file whole, so a read needs no lock)."""
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


@contextlib.contextmanager
def results_to_update():
    """The results dict, written back on exit; the read and the write are under a lock shared by parallel runs."""
    HERE.mkdir(parents=True, exist_ok=True)
    with open(HERE / ".results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = read_results()
        yield results
        write_atomically(RESULTS, lambda tmp: tmp.write_text(json.dumps(results, indent=1)))


def save_checkpoint(obj, path):
    write_atomically(path, lambda tmp: torch.save(obj, tmp))


# --- select: the optimizer and learning rate ---------------------------------------------------------

def select(data, device):
    """Train each candidate on each probe model for PROBE_EPOCHS epochs; keep the lowest mean validation NLL."""
    probes = read_results().get("selection", {}).get("probes", {})
    for optimizer_name, lr in CANDIDATES:
        for name in PROBES:
            key = f"{optimizer_name} {lr} on {name}"
            if key in probes:
                continue
            torch.manual_seed(SETUP["seed"])
            model = make_model(name).to(device)
            optimizer = make_optimizer(model, optimizer_name, lr)
            start = time.time()
            result = train_epochs(model, BatchLoader(data.train, SETUP["batch_size"], shuffle=True, seed=SETUP["seed"]),
                                  BatchLoader(data.valid, 1000), PROBE_EPOCHS, optimizer=optimizer, device=device,
                                  progress=False)
            probes[key] = dict(describe_run(model, optimizer), probe=name, epochs=PROBE_EPOCHS,
                               valid_curve=[v * D for v in result.valid_losses[1:]],
                               valid_nll=float(result.valid_losses[-1] * D), seconds=round(time.time() - start, 1))
            print(f"{key}: validation NLL {probes[key]['valid_nll']:.2f} nats per image after {PROBE_EPOCHS} epochs "
                  f"({probes[key]['seconds']:.0f} s)", flush=True)
            with results_to_update() as results:
                results.setdefault("selection", {})["probes"] = probes
    means = {(o, lr): np.mean([probes[f"{o} {lr} on {name}"]["valid_nll"] for name in PROBES]) for o, lr in CANDIDATES}
    (optimizer_name, lr), best = min(means.items(), key=lambda item: item[1])
    with results_to_update() as results:
        results["selection"].update(chosen=dict(optimizer=optimizer_name, lr=lr), mean_valid_nll=best,
                                    rule=f"lowest mean validation NLL of {', '.join(PROBES)} after {PROBE_EPOCHS} epochs")
    print(f"chosen: {optimizer_name} at lr {lr} (mean validation NLL {best:.2f} nats per image)")


# --- run: one configuration, early-stopped, resumable -------------------------------------------------

def run(name, data, minutes, device):
    chosen = read_results().get("selection", {}).get("chosen")
    if chosen is None:
        raise SystemExit("no optimizer chosen yet: run `python experiments/made_mnist.py select` first")
    torch.manual_seed(SETUP["seed"])
    model = make_model(name).to(device)
    optimizer = make_optimizer(model, chosen["optimizer"], chosen["lr"])
    labels = describe_run(model, optimizer)
    state = dict(epoch=0, best_valid=math.inf, best_epoch=0, valid_curve=[], seconds=0.0, stopped_by=None)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    last, best = CHECKPOINTS / f"{name}-last.pt", CHECKPOINTS / f"{name}-best.pt"
    if last.exists():
        saved = torch.load(last, map_location=device, weights_only=False)
        if saved.get("labels") != labels:
            raise SystemExit(f"{last} holds a run of {saved.get('labels')}, not of {name} as configured now "
                             f"({labels}); it is left untouched: move it away to start {name} afresh")
        model.load_state_dict(saved["model"])   # with the step count, so the mask cycle resumes where it was
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        if state["stopped_by"] is not None and state["stopped_by"].startswith("the time budget"):
            state["stopped_by"] = None   # a new session of the run, with a budget of its own
        print(f"{name}: resuming after epoch {state['epoch']} (best validation {state['best_valid'] * D:.2f})")
    if state["stopped_by"] is None:
        train = BatchLoader(data.train, SETUP["batch_size"], shuffle=True, seed=SETUP["seed"])
        train.epoch = state["epoch"]   # the batches an uninterrupted run would see
        deadline = time.time() + 60 * minutes
        clock = [time.time()]

        def on_epoch_end(epoch, valid_loss):
            state["epoch"] += 1
            state["valid_curve"].append(valid_loss * D)
            state["seconds"] += time.time() - clock[0]
            clock[0] = time.time()
            if valid_loss < state["best_valid"]:
                state["best_valid"], state["best_epoch"] = valid_loss, state["epoch"]
                save_checkpoint(model.state_dict(), best)
            if state["epoch"] - state["best_epoch"] >= SETUP["patience"]:
                state["stopped_by"] = f"early stopping (no improvement in {SETUP['patience']} epochs)"
            elif state["epoch"] >= SETUP["max_epochs"]:
                state["stopped_by"] = f"the cap of {SETUP['max_epochs']} epochs"
            elif time.time() > deadline:
                state["stopped_by"] = f"the time budget ({minutes:g} min for the last session of the run)"
            save_checkpoint(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), state=state,
                                 labels=labels), last)
            print(f"{name} epoch {state['epoch']}: validation {valid_loss * D:.2f} nats per image, best "
                  f"{state['best_valid'] * D:.2f} at epoch {state['best_epoch']}", flush=True)
            return state["stopped_by"] is not None

        train_epochs(model, train, BatchLoader(data.valid, 1000), SETUP["max_epochs"] - state["epoch"],
                     optimizer=optimizer, device=device, progress=False, on_epoch_end=on_epoch_end)
    model.load_state_dict(torch.load(best, map_location=device))
    counts = [k for k in (1, 2, 4, 8, 16, 32, 64) if k < model.num_masks] + [model.num_masks]
    by_masks = {str(k): nll_per_image(model, data.test, k) for k in counts}   # the test split, once per model
    return dict(labels, epochs=state["epoch"], best_epoch=state["best_epoch"], stopped_by=state["stopped_by"],
                device=describe_device(device), train_seconds=round(state["seconds"], 1),
                batch_size=SETUP["batch_size"], patience=SETUP["patience"], seed=SETUP["seed"],
                valid_nll=state["best_valid"] * D, valid_curve=state["valid_curve"],
                test_nll=by_masks[str(model.num_masks)], test_nll_by_masks=by_masks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["select", "run", "list"])
    parser.add_argument("names", nargs="*", help="configurations to run (see `list`)")
    parser.add_argument("--minutes", type=float, default=math.inf, help="wall-time budget of each run, this session")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.command == "list":
        print("\n".join(CONFIGS))
        return
    unknown = [n for n in args.names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; see `python {parser.prog} list`")
    if args.command == "run" and not args.names:
        parser.error("name the configurations to run (see `list`)")
    if not args.minutes > 0:
        parser.error(f"--minutes must be positive, got {args.minutes}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device, data = default_device(), load_dataset("mnist")
    if args.command == "select":
        select(data, device)
    for name in args.names:
        result = run(name, data, args.minutes, device)
        with results_to_update() as results:
            results.setdefault("runs", {})[name] = result
        print(f"{name}: test NLL {result['test_nll']:.2f} nats per image after {result['epochs']} epochs (best "
              f"{result['best_epoch']}), {result['train_seconds'] / 60:.1f} min, stopped by {result['stopped_by']}")


if __name__ == "__main__":
    main()
