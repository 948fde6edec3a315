"""Reproduce the MADE paper's binarized MNIST table (Germain et al. 2015, Table 6), resumably.

Three models, trained on the 50000 training images, early-stopped on the 10000 validation images,
reported on the 10000 test images in nats per image:

    1 hidden layer of 500 units,  1 mask    paper 88.40
    1 hidden layer of 500 units, 32 masks   paper 86.64 (ensemble of the 32 masks at test time)
    2 hidden layers of 500 units, 32 masks  paper 86.41

Connectivity-agnostic training with natural ordering: every step uses the next of the model's
masks, and at test time the ensemble is the exact mixture (1/k) sum_j p_j(x), by logsumexp. As in
the paper's MNIST command, the models have direct connections from the inputs to the outputs
(without them a 1-layer MADE stalls in the 90s). Unlike that command, the ordering stays natural
(the paper also shuffled orderings between masks) and the optimizer is Adam (the paper: Adagrad).
Validation after each epoch uses mask 0 alone (the ensemble costs k passes); the checkpoint with
the best validation NLL is the one reported.

Each epoch ends with a checkpoint in bench/checkpoints/, so an interrupted run resumes where it
stopped. Results (hyper-parameters, curves, test NLL against the number of masks, wall time) go
to bench/paper_results.json, which notebooks/05_made_paper_reproduction.ipynb reads.

    python bench/paper.py                      # all three, until early stopping or the epoch cap
    python bench/paper.py --only 1x500-1mask --minutes 20
"""
import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers.data import load_dataset  # noqa: E402
from helpers.models import MADE  # noqa: E402
from helpers.training import BatchLoader, default_device, describe_device, train_epochs  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "paper_results.json"
CHECKPOINTS = HERE / "checkpoints"

CONFIGS = {
    "1x500-1mask": dict(hidden_sizes=[500], num_masks=1, paper=88.40),
    "1x500-32masks": dict(hidden_sizes=[500], num_masks=32, paper=86.64),
    "2x500-32masks": dict(hidden_sizes=[500, 500], num_masks=32, paper=86.41),
}
HYPER = dict(optimizer="Adam", lr=1e-3, batch_size=100, max_epochs=500, patience=30, ordering="natural",
             direct_connections=True, seed=0)
MASK_COUNTS = (1, 2, 4, 8, 16, 32)
D = 784


def per_image_nll(model, images, n_masks, batch_size=1000):
    """Mean test NLL in nats per image of the first n_masks masks' exact mixture."""
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        total = sum(-model.log_prob(torch.as_tensor(images[i:i + batch_size]).to(device), n_masks=n_masks).sum().item()
                    for i in range(0, len(images), batch_size))
    return total / len(images)


def run(name, data, minutes, device):
    config = CONFIGS[name]
    torch.manual_seed(HYPER["seed"])
    model = MADE((28, 28), 2, config["hidden_sizes"], num_masks=config["num_masks"], seed=HYPER["seed"],
                 direct=HYPER["direct_connections"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=HYPER["lr"])
    state = dict(epoch=0, best_valid=float("inf"), best_epoch=0, valid=[], seconds=0.0, done=False)
    CHECKPOINTS.mkdir(exist_ok=True)
    last, best = CHECKPOINTS / f"{name}-last.pt", CHECKPOINTS / f"{name}-best.pt"
    if last.exists():
        saved = torch.load(last, map_location=device)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        model.mask_index, model.steps = saved["mask_index"], saved["steps"]
        print(f"{name}: resuming after epoch {state['epoch']} (best valid {state['best_valid'] * D:.2f} nats)")
    if not state["done"]:
        train = BatchLoader(data.train, HYPER["batch_size"], shuffle=True, seed=HYPER["seed"] + state["epoch"])
        valid = BatchLoader(data.valid, 1000)
        deadline = time.time() + 60 * minutes
        clock = [time.time()]

        def on_epoch_end(epoch, valid_loss):
            state["epoch"] += 1
            state["valid"].append(valid_loss)
            state["seconds"] += time.time() - clock[0]
            clock[0] = time.time()
            if valid_loss < state["best_valid"]:
                state["best_valid"], state["best_epoch"] = valid_loss, state["epoch"]
                torch.save(model.state_dict(), best)
            stalled = state["epoch"] - state["best_epoch"] >= HYPER["patience"]
            state["done"] = stalled or state["epoch"] >= HYPER["max_epochs"]
            torch.save(dict(model=model.state_dict(), optimizer=optimizer.state_dict(), state=state,
                            mask_index=model.mask_index, steps=model.steps), last)
            print(f"{name} epoch {state['epoch']}: valid {valid_loss * D:.2f} nats (mask 0), "
                  f"best {state['best_valid'] * D:.2f} at epoch {state['best_epoch']}", flush=True)
            return state["done"] or time.time() > deadline

        train_epochs(model, train, valid, HYPER["max_epochs"] - state["epoch"], HYPER["lr"],
                     device=device, optimizer=optimizer, on_epoch_end=on_epoch_end)
    model.load_state_dict(torch.load(best, map_location=device))
    counts = [k for k in MASK_COUNTS if k <= config["num_masks"]]
    test = {k: per_image_nll(model, data.test, k) for k in counts}
    return dict(hidden_sizes=config["hidden_sizes"], num_masks=config["num_masks"], paper=config["paper"],
                epochs=state["epoch"], best_epoch=state["best_epoch"], finished=state["done"],
                train_seconds=round(state["seconds"], 1), valid_curve=[v * D for v in state["valid"]],
                test_nll_by_masks={str(k): v for k, v in test.items()}, test_nll=test[counts[-1]])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=list(CONFIGS), action="append", help="run only these configurations")
    parser.add_argument("--minutes", type=float, default=float("inf"), help="wall-time budget per configuration")
    args = parser.parse_args()
    device = default_device()
    data = load_dataset("mnist")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["hyper_parameters"] = HYPER
    results["device"] = describe_device(device)
    for name in args.only or CONFIGS:
        results.setdefault("runs", {})[name] = run(name, data, args.minutes, device)
        RESULTS.write_text(json.dumps(results, indent=1))
        r = results["runs"][name]
        print(f"{name}: test {r['test_nll']:.2f} nats per image (paper {r['paper']}) after {r['epochs']} epochs, "
              f"best at {r['best_epoch']}, {r['train_seconds'] / 60:.1f} min" + ("" if r["finished"] else ", unfinished"))


if __name__ == "__main__":
    main()
