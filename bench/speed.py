"""How fast MADE trains and samples, as ratios against baselines measured in the same run.

Two models: MNIST-sized MADE (D = 784, d = 2, hidden [512, 512], batch 128) and 2D MADE (d = 200,
one-hot, hidden [512, 512], batch 128). For each:

* training steps per second, against a plain masked MLP of the same layer shapes, masks and loss
  (MADE's masks multiplied into the weights, no other work) and against the same MLP unmasked;
* one epoch of `train_epochs` against the pure model compute of that epoch (the same steps and
  evaluations on batches sliced in advance): the difference is the data path, the progress bar and
  the check of every batch's loss for NaN;
* sampling 100 examples with the fast sampler against the plain one (D forward passes);
* `log_prob` throughput (examples per second, batches of 1000).

Candidates are timed in alternation, several rounds, and each ratio is the median of the per-round
ratios, so that load from other processes on a shared machine hits both sides alike. Every benchmark
runs on one device, the CPU unless --device says otherwise (train_epochs included, which would
otherwise pick CUDA when present), and results.json records it. Prints a table and writes
bench/results.json.

    python bench/speed.py [--rounds 5] [--threads N] [--device cpu|cuda]
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from helpers.data import load_dataset
from helpers.devices import describe_device
from helpers.models import MADE
from helpers.training import BatchLoader, evaluate, train_epochs

HIDDEN = [512, 512]
BATCH = 128


class MaskedMLP(nn.Module):
    """The baseline: MADE's layer shapes and loss with nothing else, with the given masks or unmasked.

    Given MADE's own masks, it differs from MADE only by MADE's code path (input checks, mask
    selection, encoding): the dense products cost the same whatever the weights, but the mask
    pattern still changes the timing measurably (random 50% masks ran about 25% slower here).
    """

    def __init__(self, sizes, d, D, masks=None):
        super().__init__()
        self.d, self.D = d, D
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        for i in range(len(self.layers)):
            self.register_buffer(f"mask{i}", None if masks is None else masks[i].clone())

    def loss(self, x):
        x = x.reshape(len(x), -1)
        h = x.float() if self.d == 2 else F.one_hot(x, self.d).flatten(1).float()
        for i, layer in enumerate(self.layers):
            mask = getattr(self, f"mask{i}")
            h = F.linear(h, layer.weight if mask is None else layer.weight * mask, layer.bias)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        if self.d == 2:
            return F.binary_cross_entropy_with_logits(h, x.float(), reduction="sum") / x.numel()
        return F.cross_entropy(h.view(-1, self.d), x.reshape(-1))


def _step(model, optimizer, batch):
    loss = model.loss(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


DEVICE = torch.device("cpu")  # where every benchmark runs: set by --device


def _sync():
    if DEVICE.type == "cuda":  # kernels run asynchronously: wait for them before reading the clock
        torch.cuda.synchronize(DEVICE)


def _time(fn, repeat=1):
    _sync()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    _sync()
    return (time.perf_counter() - start) / repeat


def _median_ratio(times, a, b):
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def bench_training(data, d, shape, rounds, steps=40):
    D = int(torch.tensor(shape).prod())
    units = D if d == 2 else D * d
    made = MADE(shape, d, HIDDEN).to(DEVICE)
    models = {
        "MADE": made,
        "masked MLP": MaskedMLP(
            [units, *HIDDEN, units], d, D, masks=[layer.masks[0] for layer in made.layers]
        ).to(DEVICE),
        "unmasked MLP": MaskedMLP([units, *HIDDEN, units], d, D).to(DEVICE),
    }
    optimizers = {k: torch.optim.Adam(m.parameters(), 1e-3) for k, m in models.items()}
    batch = torch.as_tensor(data.train[:BATCH]).long().to(DEVICE)
    times = {k: [] for k in models}
    for _ in range(rounds):
        for k, m in models.items():
            _step(m, optimizers[k], batch)  # warm-up
            times[k].append(_time(lambda m=m, k=k: _step(m, optimizers[k], batch), steps))
    return {
        "train steps/s, MADE": 1 / statistics.median(times["MADE"]),
        "train steps/s, masked MLP": 1 / statistics.median(times["masked MLP"]),
        "train steps/s, unmasked MLP": 1 / statistics.median(times["unmasked MLP"]),
        "MADE step / masked MLP step": _median_ratio(times, "MADE", "masked MLP"),
        "MADE step / unmasked MLP step": _median_ratio(times, "MADE", "unmasked MLP"),
    }


def bench_epoch(data, d, shape, rounds):
    """train_epochs(epochs=1) against the same steps and evaluations on batches sliced in advance."""
    model = MADE(shape, d, HIDDEN).to(DEVICE)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    train, test = BatchLoader(data.train, BATCH, shuffle=True), BatchLoader(data.test, 1000)
    order = torch.randperm(len(data.train))
    train_batches = [
        torch.as_tensor(data.train)[order[i : i + BATCH]].long().to(DEVICE)
        for i in range(0, len(order), BATCH)
    ]
    test_batches = [b.long().to(DEVICE) for b in test]

    def pure():
        evaluate(model, test_batches)
        model.train()
        for batch in train_batches:
            _step(model, optimizer, batch)
        evaluate(model, test_batches)

    def full():
        train_epochs(
            model, train, test, epochs=1, lr=None, optimizer=optimizer, progress=False, device=DEVICE
        )

    times = {"full": [], "pure": []}
    for _ in range(rounds):
        times["full"].append(_time(full))
        times["pure"].append(_time(pure))
    return {
        "train_epochs epoch, s": statistics.median(times["full"]),
        "pure compute of that epoch, s": statistics.median(times["pure"]),
        "epoch / pure compute": _median_ratio(times, "full", "pure"),
    }


def bench_sampling(d, shape, rounds, n=100):
    model = MADE(shape, d, HIDDEN).to(DEVICE).eval()
    times = {"fast": [], "plain": []}
    for _ in range(rounds):
        for method in times:
            times[method].append(_time(lambda method=method: model.sample(n, method=method)))
    return {
        f"sample {n}, fast, s": statistics.median(times["fast"]),
        f"sample {n}, plain, s": statistics.median(times["plain"]),
        "plain / fast sampling": _median_ratio(times, "plain", "fast"),
    }


def bench_log_prob(data, d, shape, rounds, batch=1000):
    model = MADE(shape, d, HIDDEN).to(DEVICE).eval()
    x = torch.as_tensor(data.test[:batch]).long().to(DEVICE)
    with torch.no_grad():
        seconds = statistics.median(_time(lambda: model.log_prob(x), 5) for _ in range(rounds))
    return {"log_prob, examples/s": batch / seconds}


def usable_device(parser, name):
    """--device as a torch.device on which a tensor can be made here, or a usage error naming --device (before
    any data are loaded): a CUDA device on a CPU-only machine fails here, not in torch after the data load."""
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, TypeError) as error:  # unknown type; absent device, driver or build
        parser.error(
            f"--device {name} cannot be used here ({str(error).split('. ')[0][:200]}); use --device cpu, "
            f"or a device this machine has (cuda, cuda:0, ...)"
        )
    return device


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=5, help="timed rounds, at least 1 (default %(default)s)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="where every benchmark runs (default: cpu)")
    args = parser.parse_args()
    if args.rounds < 1:  # checked before the data load: a median of no rounds fails only after it
        parser.error(f"--rounds must be at least 1 (each ratio is a median over rounds), got {args.rounds}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = usable_device(parser, args.device)
    torch.manual_seed(0)
    device = describe_device(DEVICE)
    results = {"device": device, "rounds": args.rounds, "hidden": HIDDEN, "batch": BATCH, "models": {}}
    for name, dataset, d, shape in (
        ("MNIST, D=784, d=2", "mnist", 2, (28, 28)),
        ("2D, d=200 one-hot", "hinton", 200, (2,)),
    ):
        data = load_dataset(dataset)
        row = {}
        row.update(bench_training(data, d, shape, args.rounds))
        row.update(bench_epoch(data, d, shape, max(2, args.rounds // 2)))
        row.update(bench_sampling(d, shape, args.rounds))
        row.update(bench_log_prob(data, d, shape, args.rounds))
        results["models"][name] = row
        print(f"\n{name} ({device}, hidden {HIDDEN}, batch {BATCH}, medians of {args.rounds} rounds)")
        for key, value in row.items():
            print(f"  {key:34} {value:12.3f}")
    out = Path(__file__).resolve().parent / "results.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
