"""The MADE paper's binarized MNIST experiments (Germain et al. 2015, section 6.2), resumable.

Figure 2 of the paper: one hidden layer of 500 units, test NLL against the number K of masks used in
training. Each configuration here is one model: `1x500-K8-random` has K = 8 masks, each with its own
random ordering and connectivity (the paper's setting); `-natural` keeps the raster ordering for
every mask (connectivity-agnostic training only). The `8000` configurations are Table 6's width: the
one-layer, one-mask one fits a CPU (about an hour per learning rate), the others need a GPU. All have
direct input-to-output connections and ReLU, train on the 50000 training images in minibatches of
100, cycle through their masks one per update, and are early-stopped on the validation NLL of the
K-mask mixture (the model's eval-mode loss), with a look-ahead of 30 epochs or a wall-time budget,
whichever comes first. The state with the best validation NLL is evaluated once on the test images,
as the exact mixture of all its K masks (and of its first k).

    python -m experiments.made_mnist select                 # optimizer and learning rate, on validation
    python -m experiments.made_mnist run 1x500-K1-random 1x500-K2-random --minutes 45
    python -m experiments.made_mnist run 1x500-K8-random --seed 1 --patience 10
    python -m experiments.made_mnist run 1x500-K8-random --optimizer Adagrad --lr 0.05
    python -m experiments.made_mnist select 1x8000-K1-random --probe-epochs 3 --candidates Adam:3e-3 Adam:1e-3
    python -m experiments.made_mnist run 1x500-K8-random --optimizer Adagrad --lr 0.01 --init orthogonal
    python -m experiments.made_mnist run 1x500-K1-random --optimizer Adam --lr 1e-3 --patience 10 --no-direct
    python -m experiments.made_mnist list
    python -m experiments.made_mnist commands               # the command of every recorded run and selection

`select` trains short probes of each candidate optimizer and learning rate on the probe configurations
(by default 1x500-K1-random and 1x500-K8-random, or the ones named) and keeps the one with the lowest
mean validation NLL, for the width of the probes; `run` uses the choice made for its width, unless
`--optimizer` and `--lr` name another (the run is then recorded under a name that says so).
`--seed` changes the orderings, the connectivity, the initialization and the batches (seed 0 is
the default; another seed is recorded as `NAME-seedS`). `--init orthogonal` starts from the released code's
orthogonal weights and zero biases instead of PyTorch's default (recorded as `NAME-orthogonal`). `--no-direct` drops
the direct input-to-output connections (recorded as `NAME-nodirect`). Each epoch ends with a checkpoint in
experiments/made_mnist/checkpoints/ (git-ignored), so an interrupted run resumes where it stopped,
with the same batches and batch size (a checkpoint of another batch size is refused), and a run stopped by its time
budget goes on when it is run again. Results go to experiments/made_mnist/results.json, and the test NLL of each image
of each run to test_nlls/NAME.npy (for paired comparisons), which notebooks/05_made_paper_reproduction.ipynb reads;
every field is read from the objects that ran. A run its time budget stopped is half-trained: it is recorded apart,
under "unfinished" and in test_nlls/unfinished/, until a later session finishes it, and `recorded_runs` (the reader
of the runs) skips it unless asked. An option that the command does not use (`select --seed 3`) is refused,
not dropped.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from experiments.results_file import locked_update, read_json, write_atomically
from experiments.results_file import refuse as refuse_file
from helpers.data import load_dataset
from helpers.devices import default_device, describe_device
from helpers.models import MADE
from helpers.models.made import INITS
from helpers.training import BatchLoader, EarlyStopping, train_epochs

HERE = Path(__file__).resolve().parent / "made_mnist"
RESULTS = HERE / "results.json"
TEST_NLLS = HERE / "test_nlls"  # one .npy per run: the test NLL of each image, for paired comparisons
CHECKPOINTS = HERE / "checkpoints"
D = 784

SETUP = dict(batch_size=100, patience=30, max_epochs=1000, direct=True, seed=0, init="pytorch")
# What a checkpoint's labels or a probe's record left out, written before it recorded that field: the script's
# constants then. A record is compared with the settings of now as if it held them.
RECORDED_BEFORE = dict(batch_size=100, seed=0, init="pytorch", direct=True)
CONFIGS = {
    f"{len(hidden)}x{hidden[0]}-K{k}-{ordering}": dict(hidden_sizes=hidden, num_masks=k, ordering=ordering)
    for hidden in ([500], [8000], [8000, 8000])
    for k in (1, 2, 4, 6, 8, 16, 32, 64)
    for ordering in ("random", "natural")
}
OPTIMIZERS = ("Adam", "Adagrad")
# `select`: the candidates (the paper tried Adagrad at these rates) and the probe models they are tried on.
CANDIDATES = [
    ("Adam", 1e-3),
    ("Adam", 3e-3),
    ("Adagrad", 0.1),
    ("Adagrad", 0.05),
    ("Adagrad", 0.01),
    ("Adagrad", 0.005),
]
PROBES, PROBE_EPOCHS = ("1x500-K1-random", "1x500-K8-random"), 15


def make_model(name, seed=SETUP["seed"], init=SETUP["init"], direct=SETUP["direct"]):
    config = CONFIGS[name]
    return MADE(
        (28, 28),
        2,
        config["hidden_sizes"],
        ordering=None if config["ordering"] == "natural" else "random",
        num_masks=config["num_masks"],
        seed=seed,
        direct=direct,
        init=init,
    )


def make_optimizer(model, optimizer, lr):
    if optimizer == "Adagrad":
        return torch.optim.Adagrad(model.parameters(), lr=lr, eps=1e-6)  # the paper's epsilon
    if optimizer == "Adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    raise ValueError(f"unknown optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)} (spelled so)")


def describe_run(model, optimizer):
    """The labels of a run, read from the objects that run it."""
    natural = bool((model.orderings == torch.arange(model.D, device=model.device)).all())
    return dict(
        hidden_sizes=list(model.hidden_sizes),
        num_masks=model.num_masks,
        ordering="natural" if natural else "random",
        direct=model.direct is not None,
        optimizer=type(optimizer).__name__,
        lr=optimizer.defaults["lr"],
        init=model.init,
    )


def width(name):
    """The hidden layers of a configuration, as its name writes them: '1x500'."""
    return name.split("-")[0]


def selection_key(name):
    """Where the optimizer chosen for a configuration's width is kept in results.json."""
    return "selection" if width(name) == "1x500" else f"selection-{width(name)}"


def rate_text(lr):
    """A learning rate as run names and commands write it: as `:g` does ("0.001", "3e-05") where that reads back as
    the same number, which keeps every name recorded so far; in full (repr) otherwise, so that rates differing past
    six significant digits never share a name, a checkpoint or a result."""
    short = f"{lr:g}"
    return short if float(short) == lr else repr(float(lr))


def run_key(name, seed=SETUP["seed"], optimizer=None, init=SETUP["init"], direct=SETUP["direct"]):
    """The name a run is recorded under: the configuration, then what differs from the defaults."""
    return (
        name
        + (f"-{optimizer[0]}{rate_text(optimizer[1])}" if optimizer else "")
        + (f"-{init}" if init != SETUP["init"] else "")
        + ("" if direct == SETUP["direct"] else "-nodirect")
        + (f"-seed{seed}" if seed != SETUP["seed"] else "")
    )


def mixture_nll_per_image(model, images, n_masks, batch_size=1000):
    """NLL in nats of each image (a float64 array) under the mixture of the model's first n_masks masks."""
    model.eval()
    with torch.no_grad():
        return torch.cat(
            [
                -model.log_prob(torch.as_tensor(images[i : i + batch_size]).to(model.device), n_masks=n_masks)
                .cpu()
                .double()
                for i in range(0, len(images), batch_size)
            ]
        ).numpy()


# --- files: results.json and checkpoints, each replaced whole or not at all ---------------------------


def read_results():
    """The results dict as last written (each write replaces the file whole, so a read needs no lock).

    A file that is not what this script writes stops the script before any training, naming the path and
    the fault; the file is left as it is."""
    results = read_json(RESULTS, holds="an object of selections and runs")
    refuse = lambda problem: refuse_file(RESULTS, problem)
    for key, value in results.items():
        if key in ("runs", "unfinished") and not all(
            isinstance(run, dict) and "test_nll" in run for run in value.values()
        ):
            refuse(f"has a run in {key!r} without its fields (each run is an object with a test_nll)")
        probes = value.get("probes", {}) if key.startswith("selection") else {}
        if not isinstance(probes, dict):
            refuse(f"has {key}.probes = {probes!r}, not an object of probes")
        for probe, record in probes.items():
            if not (isinstance(record, dict) and isinstance(record.get("valid_nll"), (int, float))):
                refuse(
                    f"has {key}.probes[{probe!r}] without a valid_nll (each probe is an object with its "
                    f"validation NLL)"
                )
        if (
            key.startswith("selection")
            and "chosen" in value
            and not (
                isinstance(value["chosen"], dict)
                and value["chosen"].get("optimizer") in OPTIMIZERS
                and isinstance(value["chosen"].get("lr"), (int, float))
            )
        ):
            refuse(
                f"has {key}.chosen = {value['chosen']!r}, not an optimizer ({', '.join(OPTIMIZERS)}) and an lr"
            )
    return results


BUDGET_STOP = "the time budget"  # how `stopped_by` begins for a run its --minutes stopped


def finished(record):
    """Whether a recorded run ended (early stopping or the epoch cap), not stopped half-trained by its time budget."""
    return not (record.get("stopped_by") or "").startswith(BUDGET_STOP)


def recorded_runs(results=None, unfinished=False):
    """{key: record} of the runs recorded in `results` (default: results.json as it is): the finished ones.
    With unfinished=True, also the runs a time budget stopped (kept under "unfinished" and in test_nlls/unfinished/
    until a later session finishes them; before that was so, they were recorded among the runs, and are skipped
    there too). Every reader of the runs reads them here, so none takes a half-trained model for a result."""
    results = read_results() if results is None else results
    runs = {key: run for key, run in results.get("runs", {}).items() if unfinished or finished(run)}
    return runs | (results.get("unfinished", {}) if unfinished else {})


def test_nlls_path(key, done=True):
    """Where a run's per-image test NLLs are kept: test_nlls/KEY.npy, or under test_nlls/unfinished/ until it ends."""
    return (TEST_NLLS if done else TEST_NLLS / "unfinished") / f"{key}.npy"


def record_run(key, result):
    """Merge a run's result into results.json: among the runs when it ended, under "unfinished" when its time budget
    stopped it (it goes on when run again, and is then moved to the runs)."""
    with results_to_update() as results:
        if finished(result):
            results.setdefault("runs", {})[key] = result
            results.get("unfinished", {}).pop(key, None)
            if results.get("unfinished") == {}:
                del results["unfinished"]
        else:
            results.setdefault("unfinished", {})[key] = result


def results_to_update():
    """The results dict, written back on exit; read, changed and written under the lock shared by parallel runs."""
    return locked_update(RESULTS, read_results)


def save_checkpoint(obj, path):
    write_atomically(path, lambda tmp: torch.save(obj, tmp))


def save_array(array, path):
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, array)

    write_atomically(path, write)


# --- select: the optimizer and learning rate ---------------------------------------------------------


def probe_settings(name, optimizer_name, lr, epochs):
    """What a probe's record must say for it to be reused: its model, optimizer and epochs, and the script's constants
    it was trained with (a record without one of those was trained with RECORDED_BEFORE's)."""
    return dict(
        probe=name,
        optimizer=optimizer_name,
        lr=lr,
        epochs=epochs,
        **{k: SETUP[k] for k in ("batch_size", "seed", "init", "direct")},
    )


def choose_optimizer(data, device, names=PROBES, epochs=PROBE_EPOCHS, candidates=CANDIDATES):
    """`select`: train each candidate on each probe model for `epochs` epochs; keep the lowest mean validation NLL.
    The choice is kept for the probes' width (all probes have one width), with the probes it compared
    (`compared`: the probes of an earlier select stay recorded, for reuse, but are not this choice's). A probe
    recorded with other settings (another number of epochs, another batch size) is trained again and replaces it.
    Each probe is merged into the file under the lock, so parallel selects keep each other's probes."""
    key = selection_key(names[0])
    wanted = {
        f"{o} {lr} on {name}": probe_settings(name, o, lr, epochs) for o, lr in candidates for name in names
    }

    def differences(probes, probe):
        """The settings in which the recorded probe differs from the one wanted (all of them if there is none)."""
        record = {**RECORDED_BEFORE, **probes[probe]} if probe in probes else {}
        return {k: record.get(k) for k, v in wanted[probe].items() if record.get(k) != v}

    for probe, settings in wanted.items():
        name, optimizer_name, lr = settings["probe"], settings["optimizer"], settings["lr"]
        probes = read_results().get(key, {}).get("probes", {})  # as now: a parallel select may have added it
        if not differences(probes, probe):
            continue
        if probe in probes:
            recorded = differences(probes, probe)
            print(
                f"{probe}: recorded with {recorded}, wanted { ({k: settings[k] for k in recorded}) }: trained again"
            )
        torch.manual_seed(SETUP["seed"])
        model = make_model(name).to(device)  # SETUP's seed, init and direct connections
        optimizer = make_optimizer(model, optimizer_name, lr)
        start = time.time()
        result = train_epochs(
            model,
            BatchLoader(data.train, SETUP["batch_size"], shuffle=True, seed=SETUP["seed"]),
            BatchLoader(data.valid, 1000),
            epochs,
            optimizer=optimizer,
            device=device,
            progress=False,
        )
        record = dict(
            describe_run(model, optimizer),
            **settings,
            valid_curve=[v * D for v in result.valid_losses[1:]],
            valid_nll=float(result.valid_losses[-1] * D),
            seconds=round(time.time() - start, 1),
            device=describe_device(device),
        )
        print(
            f"{probe}: validation NLL {record['valid_nll']:.2f} nats per image after {epochs} epochs "
            f"({record['seconds']:.0f} s)",
            flush=True,
        )
        with results_to_update() as results:
            results.setdefault(key, {}).setdefault("probes", {})[probe] = record
    with results_to_update() as results:
        probes = results[key]["probes"]
        replaced = [probe for probe in wanted if differences(probes, probe)]
        if replaced:
            raise SystemExit(
                f"a parallel select replaced the probes {', '.join(replaced)} with probes of other "
                f"settings; nothing was chosen: run this select again"
            )
        means = {
            (o, lr): np.mean([probes[f"{o} {lr} on {name}"]["valid_nll"] for name in names])
            for o, lr in candidates
        }
        (optimizer_name, lr), best = min(means.items(), key=lambda item: item[1])
        results[key].update(
            chosen=dict(optimizer=optimizer_name, lr=lr),
            mean_valid_nll=best,
            compared=list(wanted),
            rule=f"lowest mean validation NLL of {', '.join(names)} after {epochs} epochs",
        )
    print(
        f"chosen for {width(names[0])}: {optimizer_name} at lr {lr} (mean validation NLL {best:.2f} nats per image)"
    )


# --- run: one configuration, early-stopped, resumable -------------------------------------------------


def run(
    name,
    data,
    minutes,
    device,
    seed=SETUP["seed"],
    optimizer=None,
    patience=SETUP["patience"],
    init=SETUP["init"],
    direct=SETUP["direct"],
):
    """Train configuration `name` to early stopping (or its time budget), then test it once.

    `optimizer`: an (optimizer name, learning rate) pair instead of the one chosen for the width."""
    if optimizer is None:
        chosen = read_results().get(selection_key(name), {}).get("chosen")
        if chosen is None:
            raise SystemExit(
                f"no optimizer chosen yet for {width(name)}: run `python -m experiments.made_mnist "
                f"select` first"
                + ("" if width(name) == "1x500" else f" (with a {width(name)} probe)")
                + ", or pass --optimizer and --lr"
            )
        optimizer_name, lr = chosen["optimizer"], chosen["lr"]
    else:
        optimizer_name, lr = optimizer
    key = run_key(name, seed, optimizer, init, direct)
    torch.manual_seed(seed)
    model = make_model(name, seed, init, direct).to(device)
    optimizer = make_optimizer(model, optimizer_name, lr)
    labels = dict(
        describe_run(model, optimizer), seed=seed, patience=patience, batch_size=SETUP["batch_size"]
    )
    state = dict(epoch=0, best_valid=math.inf, best_epoch=0, valid_curve=[], seconds=0.0, stopped_by=None)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    last, best = CHECKPOINTS / f"{key}-last.pt", CHECKPOINTS / f"{key}-best.pt"
    if last.exists():
        saved = torch.load(last, map_location=device, weights_only=False)
        if {**RECORDED_BEFORE, **(saved.get("labels") or {})} != labels:  # a label it lacks: RECORDED_BEFORE
            raise SystemExit(
                f"{last} holds a run of {saved.get('labels')}, not of {key} as configured now "
                f"({labels}); it is left untouched: move it away to start {key} afresh"
            )
        model.load_state_dict(saved["model"])  # with the step count, so the mask cycle resumes where it was
        optimizer.load_state_dict(saved["optimizer"])
        state = saved["state"]
        if not finished(state):
            state["stopped_by"] = None  # a new session of the run, with a budget of its own
        print(f"{key}: resuming after epoch {state['epoch']} (best validation {state['best_valid'] * D:.2f})")
    if state["stopped_by"] is None:
        train = BatchLoader(data.train, SETUP["batch_size"], shuffle=True, seed=seed)
        train.epoch = state["epoch"]  # the batches an uninterrupted run would see
        deadline = time.time() + 60 * minutes
        clock = [time.time()]
        stopping = EarlyStopping(
            patience, state["best_valid"], state["best_epoch"]
        )  # as `fit` stops, resumed

        def on_epoch_end(epoch, valid_loss):
            state["epoch"] += 1
            state["valid_curve"].append(valid_loss * D)
            state["seconds"] += time.time() - clock[0]
            clock[0] = time.time()
            if stopping.update(state["epoch"], valid_loss):
                state["best_valid"], state["best_epoch"] = stopping.best_loss, stopping.best_epoch
                save_checkpoint(model.state_dict(), best)
            if stopping.should_stop(state["epoch"]):
                state["stopped_by"] = f"early stopping (no improvement in {patience} epochs)"
            elif state["epoch"] >= SETUP["max_epochs"]:
                state["stopped_by"] = f"the cap of {SETUP['max_epochs']} epochs"
            elif time.time() > deadline:
                state["stopped_by"] = f"{BUDGET_STOP} ({minutes:g} min for the last session of the run)"
            save_checkpoint(
                dict(model=model.state_dict(), optimizer=optimizer.state_dict(), state=state, labels=labels),
                last,
            )
            print(
                f"{key} epoch {state['epoch']}: validation {valid_loss * D:.2f} nats per image, best "
                f"{state['best_valid'] * D:.2f} at epoch {state['best_epoch']}",
                flush=True,
            )
            return state["stopped_by"] is not None

        train_epochs(
            model,
            train,
            BatchLoader(data.valid, 1000),
            SETUP["max_epochs"] - state["epoch"],
            optimizer=optimizer,
            device=device,
            progress=False,
            on_epoch_end=on_epoch_end,
        )
    model.load_state_dict(torch.load(best, map_location=device))
    counts = [k for k in (1, 2, 4, 8, 16, 32, 64) if k < model.num_masks] + [model.num_masks]
    test_nlls = {
        k: mixture_nll_per_image(model, data.test, k) for k in counts
    }  # the test split, once per model
    by_masks = {str(k): float(nlls.mean()) for k, nlls in test_nlls.items()}
    done = finished(state)
    test_nlls_path(key, done).parent.mkdir(parents=True, exist_ok=True)
    save_array(test_nlls[model.num_masks].astype(np.float32), test_nlls_path(key, done))
    if done:
        test_nlls_path(key, done=False).unlink(missing_ok=True)  # once the finished run's are written
    return key, dict(
        labels,
        configuration=name,
        epochs=state["epoch"],
        best_epoch=state["best_epoch"],
        stopped_by=state["stopped_by"],
        device=describe_device(device),
        train_seconds=round(state["seconds"], 1),
        valid_nll=state["best_valid"] * D,
        valid_curve=state["valid_curve"],
        test_nll=by_masks[str(model.num_masks)],
        test_nll_by_masks=by_masks,
    )


def candidate(text):
    """An `--candidates` item, OPTIMIZER:LR."""
    optimizer, _, lr = text.partition(":")
    if optimizer not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {optimizer!r} in {text!r}: use one of {', '.join(OPTIMIZERS)}"
        )
    return optimizer, positive(lr)


def positive(text):
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def budget(text):
    """--minutes: a positive number of minutes, or inf for none."""
    return math.inf if float(text) == math.inf else positive(text)


def seed_value(text):
    """--seed: an integer in [0, 2**32 - 1], the seeds MADE and numpy accept."""
    value = int(text)
    if not 0 <= value <= 2**32 - 1:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {2**32 - 1}], got {text}")
    return value


def threads(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


# --- commands: what ran, as the commands that regenerate it ---------------------------------------------

SCRIPT = "python -m experiments.made_mnist"


def select_command(selection):
    """The `select` command behind a recorded selection's choice: the probes it compared (their configurations, epochs
    and candidates), not every probe recorded under its width. A selection recorded before it listed them compared
    all its probes, which then had one number of epochs."""
    if "compared" in selection:
        probes = [selection["probes"][probe] for probe in selection["compared"]]
    else:
        probes = list(selection["probes"].values())
        if len({p["epochs"] for p in probes}) != 1:
            raise ValueError(
                f"a selection recorded before selections listed their probes holds probes of "
                f"{sorted({p['epochs'] for p in probes})} epochs, so which ones its choice compared is not "
                f"recorded: run its select again ({selection.get('rule', 'its rule is not recorded')})"
            )
    names = list(dict.fromkeys(p["probe"] for p in probes))
    candidates = list(dict.fromkeys(f"{p['optimizer']}:{rate_text(p['lr'])}" for p in probes))
    (epochs,) = {p["epochs"] for p in probes}
    return f"{SCRIPT} select {' '.join(names)} --probe-epochs {epochs} --candidates {' '.join(candidates)}"


def run_command(key, record):
    """The `run` command of the recorded run `key`, with every argument that defines it (an optimizer of its own
    only if the run is recorded under it; otherwise it used its width's selection, which runs first)."""
    name, seed, init = record.get("configuration", key), record["seed"], record.get("init", SETUP["init"])
    direct = record.get("direct", SETUP["direct"])
    own = key != run_key(name, seed, None, init, direct)
    optimizer = f" --optimizer {record['optimizer']} --lr {rate_text(record['lr'])}" if own else ""
    init_arg = f" --init {init}" if init != SETUP["init"] else ""
    direct_arg = "" if direct == SETUP["direct"] else " --no-direct"
    return (
        f"{SCRIPT} run {name} --seed {seed}{optimizer} --patience {record['patience']}{init_arg}{direct_arg}"
        " --threads 1"
    )


def commands(results):
    """Every recorded selection and run as its command, selections first (the runs without an optimizer of
    their own use them), unfinished runs included (their command finishes them): running them all regenerates
    results.json's runs and nothing else."""
    selections = [select_command(v) for k, v in sorted(results.items()) if k.startswith("selection")]
    return selections + [
        run_command(key, r) for key, r in sorted(recorded_runs(results, unfinished=True).items())
    ]


# The commands that use each option (by its dest); any other command refuses it rather than drop it silently.
USED_BY = dict(
    minutes={"run"},
    threads={"run", "select"},
    seed={"run"},
    patience={"run"},
    optimizer={"run"},
    lr={"run"},
    init={"run"},
    direct={"run"},
    probe_epochs={"select"},
    candidates={"select"},
)


def given_options(argv):
    """The dests of the options written in `argv` (whatever their values: `--seed 0` is given too)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_intermixed_args(argv))) - {"command", "names"}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["select", "run", "list", "commands"])
    parser.add_argument(
        "names",
        nargs="*",
        help="run: the configurations to run; select: the probe configurations "
        f"(default {' '.join(PROBES)}); see `list`",
    )
    parser.add_argument(
        "--minutes", type=budget, default=math.inf, help="run: the wall-time budget of each run, this session"
    )
    parser.add_argument(
        "--threads", type=threads, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--seed",
        type=seed_value,
        default=SETUP["seed"],
        help="run: orderings, connectivity, initialization and batches (default %(default)s)",
    )
    parser.add_argument(
        "--patience",
        type=int,
        default=SETUP["patience"],
        help="run: the look-ahead of early stopping, in epochs (default %(default)s)",
    )
    parser.add_argument(
        "--optimizer", choices=OPTIMIZERS, help="run: instead of the one chosen by select (with --lr)"
    )
    parser.add_argument("--lr", type=positive, help="run: the learning rate of --optimizer")
    parser.add_argument(
        "--init",
        choices=INITS,
        default=SETUP["init"],
        help="run: the initial weights (default %(default)s; orthogonal: the released code's)",
    )
    parser.add_argument(
        "--no-direct",
        dest="direct",
        action="store_false",
        help="run: without the direct input-to-output connections (recorded as NAME-nodirect)",
    )
    parser.add_argument("--probe-epochs", type=int, default=PROBE_EPOCHS, help="select: epochs of each probe")
    parser.add_argument(
        "--candidates",
        type=candidate,
        nargs="+",
        default=CANDIDATES,
        help="select: OPTIMIZER:LR pairs (default: Adam at 1e-3 and 3e-3, Adagrad at the paper's rates)",
    )
    return parser


def main():
    parser = build_parser()
    args = parser.parse_intermixed_args()
    flags = {action.dest: action.option_strings[-1] for action in parser._actions if action.dest in USED_BY}
    unused = [
        dest for dest in flags if dest in given_options(sys.argv[1:]) and args.command not in USED_BY[dest]
    ]
    if unused:
        parser.error(
            f"{args.command} does not use {', '.join(flags[dest] for dest in unused)}: "
            + "; ".join(
                f"{flags[dest]} is an option of {' and '.join(sorted(USED_BY[dest]))}" for dest in unused
            )
            + "; leave them out"
        )
    if args.command == "list":
        print("\n".join(CONFIGS))
        return
    if args.command == "commands":
        print("\n".join(commands(read_results())))
        return
    unknown = [n for n in args.names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {', '.join(unknown)}; see `python {parser.prog} list`")
    if args.command == "run" and not args.names:
        parser.error("name the configurations to run (see `list`)")
    if (args.optimizer is None) != (args.lr is None):
        parser.error("--optimizer and --lr go together")
    if args.command == "select" and len({width(n) for n in args.names}) > 1:
        parser.error(f"select chooses for one width at a time; got {', '.join(args.names)}")
    if args.patience < 1 or args.probe_epochs < 1:
        parser.error("--patience and --probe-epochs must be at least 1")
    read_results()  # a damaged results file stops us here, before any training
    if args.threads:
        torch.set_num_threads(args.threads)
    device, data = default_device(), load_dataset("mnist")
    if args.command == "select":
        choose_optimizer(data, device, tuple(args.names) or PROBES, args.probe_epochs, args.candidates)
        return
    optimizer = (args.optimizer, args.lr) if args.optimizer else None
    for name in args.names:
        key, result = run(
            name, data, args.minutes, device, args.seed, optimizer, args.patience, args.init, args.direct
        )
        record_run(key, result)
        print(
            f"{key}: test NLL {result['test_nll']:.2f} nats per image after {result['epochs']} epochs (best "
            f"{result['best_epoch']}), {result['train_seconds'] / 60:.1f} min, stopped by {result['stopped_by']}"
        )


if __name__ == "__main__":
    main()
