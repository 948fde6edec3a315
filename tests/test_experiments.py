"""experiments/made_mnist.py: bad input gets a clear error, and an existing checkpoint is never touched by one.
The command lines of seed_spread.py and lr_selection.py refuse bad input too."""

import importlib.util
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.data import Dataset
from helpers.training import TrainingResult

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"


def script(name, *args):
    """`python -m experiments.NAME ARGS` from the repository root, as the README runs it."""
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{name}", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    """The script as a module, writing into tmp_path instead of experiments/made_mnist/."""
    module = importlib.import_module("experiments.made_mnist")
    monkeypatch.setattr(module, "HERE", tmp_path)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.json")
    monkeypatch.setattr(module, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(module, "TEST_NLLS", tmp_path / "test_nlls")
    return module


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "1x500-K3-random"], "unknown configuration(s) 1x500-K3-random"),
        (["run"], "name the configurations to run"),
        (
            ["run", "1x500-K1-random", "--minutes", "0"],
            "argument --minutes: must be a positive number, got 0",
        ),
        (
            ["run", "1x500-K1-random", "--minutes", "-5"],
            "argument --minutes: must be a positive number, got -5",
        ),
        (
            ["run", "1x500-K1-random", "--minutes", "nan"],
            "argument --minutes: must be a positive number, got nan",
        ),
        (
            ["run", "1x500-K1-random", "--optimizer", "Adam", "--lr", "inf"],
            "argument --lr: must be a positive number, got inf",
        ),
        (["run", "1x500-K1-random", "--threads", "-2"], "argument --threads: must be at least 1, got -2"),
        (["run", "1x500-K1-random", "--threads", "0"], "argument --threads: must be at least 1, got 0"),
        (
            ["run", "1x500-K1-random", "--optimizer", "SGD", "--lr", "0.1"],
            "argument --optimizer: invalid choice: 'SGD'",
        ),
        (["run", "1x500-K1-random", "--optimizer", "adagrad", "--lr", "0.1"], "invalid choice: 'adagrad'"),
        (["run", "1x500-K1-random", "--optimizer", "Adagrad"], "--optimizer and --lr go together"),
        (["select", "1x500-K1-random", "1x8000-K1-random"], "select chooses for one width at a time"),
        (["select", "--candidates", "SGD:0.1"], "unknown optimizer 'SGD' in 'SGD:0.1'"),
        (
            ["run", "1x500-K1-random", "--seed", "-1"],
            "argument --seed: must be an integer in [0, 4294967295], got -1",
        ),
        (
            ["run", "1x500-K1-random", "--seed", str(2**32)],
            "argument --seed: must be an integer in [0, 4294967295]",
        ),
    ],
)
def test_bad_command_lines_are_refused_with_the_reason(args, message):
    result = script("made_mnist", *args)
    assert result.returncode == 2 and message in result.stderr


@pytest.mark.parametrize(
    "name,args,message",
    [
        ("seed_spread", ["mnist", "nope"], "unknown entries ['nope']: choose among"),
        ("seed_spread", ["mnist", "--threads", "0"], "--threads must be at least 1, got 0"),
        (
            "lr_selection",
            ["hinton one-hot"],
            "unknown entries ['hinton one-hot']: choose among 'mnist', 'shapes'",
        ),
        ("lr_selection", ["mnist", "--lr", "0.3"], "none of --lr [0.3] is in mnist's grid"),
    ],
)
def test_the_seed_spread_and_lr_selection_command_lines_refuse_bad_input(name, args, message):
    result = script(name, *args)
    assert result.returncode == 2 and message in result.stderr


def test_a_run_needs_a_chosen_optimizer(experiment):
    with pytest.raises(SystemExit, match="run `python -m experiments.made_mnist select` first"):
        experiment.run("1x500-K1-random", None, 1, torch.device("cpu"))


def test_a_checkpoint_of_another_configuration_is_left_untouched(experiment, tmp_path):
    experiment.RESULTS.write_text(json.dumps({"selection": {"chosen": {"optimizer": "Adam", "lr": 0.001}}}))
    other = experiment.make_model("1x500-K2-random")
    labels = experiment.describe_run(other, experiment.make_optimizer(other, "Adam", 0.001))
    checkpoint = tmp_path / "checkpoints" / "1x500-K4-random-last.pt"
    checkpoint.parent.mkdir()
    torch.save(dict(model=other.state_dict(), labels=labels), checkpoint)
    before = checkpoint.read_bytes()
    images = np.zeros((4, 28, 28), dtype=np.uint8)
    data = Dataset("mnist", train=images, valid=images, test=images, d=2, shape=(28, 28))
    with pytest.raises(
        SystemExit, match=r"holds a run of .*'num_masks': 2.*not of 1x500-K4-random.*left untouched"
    ):
        experiment.run("1x500-K4-random", data, 1, torch.device("cpu"))
    assert checkpoint.read_bytes() == before


def test_a_failed_write_keeps_the_old_results_and_leaves_no_temporary_file(experiment, tmp_path):
    experiment.RESULTS.write_text(json.dumps({"runs": {"1x500-K1-random": {"test_nll": 92.68}}}))
    before = experiment.RESULTS.read_bytes()
    with pytest.raises(TypeError, match="not JSON serializable"):
        with experiment.results_to_update() as results:
            results["runs"]["1x500-K2-random"] = {"test_nll": object()}  # fails in json.dumps
    assert experiment.RESULTS.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock", "results.json"]
    with experiment.results_to_update() as results:
        results["runs"]["1x500-K2-random"] = {"test_nll": 92.23}
    assert experiment.read_results()["runs"]["1x500-K2-random"] == {"test_nll": 92.23}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock", "results.json"]


def test_options_may_follow_the_names():
    """`run --minutes 45 NAME` parses (intermixed arguments), and reaches the data, not an argparse error."""
    result = script("made_mnist", "run", "--minutes", "45", "1x500-K1-random", "--seed", "3", "--lr", "nan")
    assert result.returncode == 2 and "argument --lr: must be a positive number, got nan" in result.stderr


def test_unknown_optimizer_names_are_refused_not_run_as_adam(experiment):
    model = experiment.make_model("1x500-K1-random")
    with pytest.raises(ValueError, match="unknown optimizer 'SGD': use one of Adam, Adagrad"):
        experiment.make_optimizer(model, "SGD", 0.1)
    assert type(experiment.make_optimizer(model, "Adagrad", 0.1)).__name__ == "Adagrad"


@pytest.mark.parametrize(
    "text,problem",
    [
        ("", "is not valid JSON"),
        ("{", "is not valid JSON"),
        ("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> other\n", "is not valid JSON"),
        ("[]", "holds a list, not an object of selections and runs"),
        ('{"selection": null}', "has 'selection' = None, not an object"),
        ('{"runs": []}', "has 'runs' = [], not an object"),
        ('{"runs": {"1x500-K1-random": {}}}', "has a run in 'runs' without its fields"),
        ('{"selection": {"chosen": {"optimizer": "SGD", "lr": 0.1}}}', "has selection.chosen ="),
        (
            '{"selection": {"probes": {"Adam 0.001 on 1x500-K1-random": {"epochs": 15}}}}',
            "has selection.probes['Adam 0.001 on 1x500-K1-random'] without a valid_nll",
        ),
        ('{"selection-1x8000": {"probes": []}}', "has selection-1x8000.probes = [], not an object of probes"),
    ],
)
def test_a_damaged_results_file_stops_the_script_before_training_and_is_left_untouched(
    experiment, text, problem
):
    experiment.RESULTS.write_text(text)
    with pytest.raises(SystemExit, match=re.escape(problem)) as error:
        experiment.run("1x500-K1-random", None, 1, torch.device("cpu"))  # no data: it must stop before any
    assert str(experiment.RESULTS) in str(error.value) and "left untouched" in str(error.value)
    assert experiment.RESULTS.read_text() == text


def test_the_command_line_checks_the_results_file_before_loading_data(experiment, monkeypatch):
    """main() reads results.json first: a damaged file is named before MNIST is loaded or a model trained."""
    experiment.RESULTS.write_text("{")
    monkeypatch.setattr(experiment, "load_dataset", lambda name: pytest.fail("the data were loaded"))
    monkeypatch.setattr(sys, "argv", ["made_mnist.py", "select"])
    with pytest.raises(SystemExit, match="is not valid JSON"):
        experiment.main()


def test_runs_are_recorded_under_names_that_say_what_differs(experiment):
    assert experiment.run_key("1x500-K8-random") == "1x500-K8-random"
    assert experiment.run_key("1x500-K8-random", seed=2) == "1x500-K8-random-seed2"
    assert experiment.run_key("1x500-K8-random", 0, ("Adagrad", 0.05)) == "1x500-K8-random-Adagrad0.05"
    assert experiment.selection_key("1x8000-K1-random") == "selection-1x8000"
    assert experiment.selection_key("1x500-K32-natural") == "selection"


def test_a_seed_changes_orderings_connectivity_and_initialization(experiment):
    torch.manual_seed(0)
    a = experiment.make_model("1x500-K2-random", seed=0)
    torch.manual_seed(1)
    b = experiment.make_model("1x500-K2-random", seed=1)
    assert not torch.equal(a.orderings, b.orderings) and not torch.equal(a.numbers0, b.numbers0)
    assert not torch.equal(a.layers[0].weight, b.layers[0].weight)


def test_a_run_records_each_test_image_nll_for_paired_comparisons(experiment, tmp_path, monkeypatch):
    images = np.random.RandomState(0).randint(0, 2, (30, 28, 28)).astype(np.uint8)
    data = Dataset("mnist", train=images, valid=images[:10], test=images[:20], d=2, shape=(28, 28))
    monkeypatch.setitem(experiment.SETUP, "max_epochs", 1)  # finished: by its cap
    key, result = experiment.run(
        "1x500-K2-random", data, math.inf, torch.device("cpu"), seed=3, optimizer=("Adam", 1e-3)
    )
    assert key == "1x500-K2-random-Adam0.001-seed3" and result["seed"] == 3 and result["epochs"] == 1
    nlls = np.load(tmp_path / "test_nlls" / f"{key}.npy")
    assert nlls.shape == (20,) and nlls.mean() == pytest.approx(result["test_nll"], rel=1e-6)
    assert result["test_nll_by_masks"]["2"] == result["test_nll"]


def test_every_recorded_run_and_selection_round_trips_through_its_command(experiment):
    """`commands` regenerates the published runs: each command, parsed by the script's own parser, names the run's
    key, its look-ahead, seed, initialization and optimizer (its own, or its width's selection, which runs first)."""
    results = json.loads((EXPERIMENTS / "made_mnist" / "results.json").read_text())
    lines = experiment.commands(results)
    parser = experiment.build_parser()
    parse = lambda line: parser.parse_intermixed_args(
        line.split()[3:]
    )  # after "python -m experiments.made_mnist"
    selected = {}
    for line in lines:
        args = parse(line)
        if args.command == "select":
            key = experiment.selection_key(args.names[0])
            probes = {f"{o} {lr} on {name}" for o, lr in args.candidates for name in args.names}
            assert probes == set(results[key]["probes"]) and selected.setdefault(key, True)
            assert {p["epochs"] for p in results[key]["probes"].values()} == {args.probe_epochs}
            continue
        (name,) = args.names
        optimizer = (args.optimizer, args.lr) if args.optimizer else None
        key = experiment.run_key(name, args.seed, optimizer, args.init, args.direct)
        record = results["runs"].pop(key)  # each run once
        if optimizer is None:
            assert selected.get(experiment.selection_key(name)), f"{key}: its selection must run before it"
            optimizer = tuple(results[experiment.selection_key(name)]["chosen"].values())
        assert (record["optimizer"], record["lr"]) == optimizer
        assert (record["seed"], record["patience"], record.get("init", "pytorch")) == (
            args.seed,
            args.patience,
            args.init,
        )
        assert record.get("configuration", key) == name and record["direct"] == args.direct
    assert results["runs"] == {}, f"runs without a command: {list(results['runs'])}"


def test_a_run_without_direct_connections_is_recorded_under_its_own_name_and_round_trips(experiment):
    assert (
        experiment.run_key("1x500-K8-random", 1, ("Adam", 1e-3), direct=False)
        == "1x500-K8-random-Adam0.001-nodirect-seed1"
    )
    model = experiment.make_model("1x500-K1-random", direct=False)
    labels = experiment.describe_run(model, experiment.make_optimizer(model, "Adam", 1e-3))
    assert model.direct is None and labels["direct"] is False
    record = dict(labels, seed=1, patience=10, configuration="1x500-K1-random")
    line = experiment.run_command("1x500-K1-random-Adam0.001-nodirect-seed1", record)
    args = experiment.build_parser().parse_intermixed_args(line.split()[3:])
    assert "--no-direct" in line and args.direct is False
    assert (
        experiment.run_key("1x500-K1-random", args.seed, (args.optimizer, args.lr), args.init, args.direct)
        == "1x500-K1-random-Adam0.001-nodirect-seed1"
    )


def test_an_orthogonal_run_is_recorded_under_its_own_name_with_its_init(experiment):
    assert (
        experiment.run_key("1x500-K8-random", 2, ("Adagrad", 0.01), "orthogonal")
        == "1x500-K8-random-Adagrad0.01-orthogonal-seed2"
    )
    model = experiment.make_model("1x500-K1-random", init="orthogonal")
    labels = experiment.describe_run(model, experiment.make_optimizer(model, "Adagrad", 0.01))
    assert labels["init"] == "orthogonal" and labels["optimizer"] == "Adagrad"
    assert not model.layers[0].bias.any()


IMAGES = Dataset(
    "mnist",
    train=np.zeros((4, 28, 28), np.uint8),
    valid=np.zeros((4, 28, 28), np.uint8),
    test=np.zeros((4, 28, 28), np.uint8),
    d=2,
    shape=(28, 28),
)


def fake_training(experiment, monkeypatch, during=lambda: None):
    """train_epochs replaced by one that records its calls and returns a validation NLL of 100 nats per image."""
    calls = []

    def train_epochs(model, train, valid, epochs, **kwargs):
        calls.append((model.num_masks, kwargs["optimizer"].defaults["lr"], epochs))
        during()
        return TrainingResult(np.zeros(1), np.full(epochs + 1, 100 / experiment.D))

    monkeypatch.setattr(experiment, "train_epochs", train_epochs)
    return calls


def probe_record(name, optimizer, lr, epochs, valid_nll):
    """The fields of a probe's record that say what it is (as select writes them) and its result."""
    return dict(probe=name, optimizer=optimizer, lr=lr, epochs=epochs, valid_nll=valid_nll)


def test_select_trains_again_a_probe_recorded_for_another_number_of_epochs(experiment, monkeypatch):
    """Probes of 15 epochs are not compared with fresh ones of 3 under a rule that says 3."""
    name = "1x500-K1-random"
    experiment.RESULTS.write_text(
        json.dumps(
            {
                "selection": {
                    "probes": {
                        f"Adam 0.001 on {name}": probe_record(name, "Adam", 0.001, 15, 90.0),
                        f"Adam 0.003 on {name}": probe_record(name, "Adam", 0.003, 3, 99.0),
                    }
                }
            }
        )
    )
    calls = fake_training(experiment, monkeypatch)
    experiment.choose_optimizer(IMAGES, torch.device("cpu"), (name,), 3, [("Adam", 0.001), ("Adam", 0.003)])
    assert calls == [(1, 0.001, 3)]  # the 3-epoch probe is reused, the 15-epoch one retrained
    selection = experiment.read_results()["selection"]
    assert {p: r["epochs"] for p, r in selection["probes"].items()} == {
        f"Adam 0.001 on {name}": 3,
        f"Adam 0.003 on {name}": 3,
    }
    assert selection["chosen"] == {"optimizer": "Adam", "lr": 0.003} and selection["rule"].endswith(
        "after 3 epochs"
    )


def test_select_keeps_the_probes_a_parallel_select_records_meanwhile(experiment, monkeypatch):
    name, other = "1x500-K1-random", "Adagrad 0.1 on 1x500-K8-random"

    def parallel_select_records_a_probe():
        with experiment.results_to_update() as results:
            results.setdefault("selection", {}).setdefault("probes", {})[other] = probe_record(
                "1x500-K8-random", "Adagrad", 0.1, 3, 95.0
            )

    fake_training(experiment, monkeypatch, during=parallel_select_records_a_probe)
    experiment.choose_optimizer(IMAGES, torch.device("cpu"), (name,), 3, [("Adam", 0.001)])
    probes = experiment.read_results()["selection"]["probes"]
    assert sorted(probes) == sorted([f"Adam 0.001 on {name}", other])


# --- experiments/seed_spread.py ----------------------------------------------------------------------


@pytest.fixture
def seed_spread(tmp_path, monkeypatch):
    """The script as a module, writing into tmp_path."""
    module = importlib.import_module("experiments.seed_spread")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.json")
    return module


def test_seeds_are_not_added_to_an_entry_recorded_with_other_settings(seed_spread, monkeypatch):
    """A changed learning rate: new seeds appended to the old record would be reported under the old rate."""
    name, model_args, fit_args, notebook = seed_spread.ENTRIES["mnist"]
    record = dict(
        dataset=name,
        notebook=notebook,
        model=model_args,
        fit=dict(fit_args, lr=3e-3),
        seeds=[0, 1],
        test_loss=[0.1, 0.1],
        best_epoch=[5, 6],
        seconds=[1.0, 1.0],
    )
    seed_spread.RESULTS.write_text(json.dumps({"mnist": record}))
    before = seed_spread.RESULTS.read_text()
    monkeypatch.setattr(seed_spread, "load_dataset", lambda name: pytest.fail("the data were loaded"))
    with pytest.raises(
        SystemExit,
        match=r"records 'mnist' with .*'lr': 0.003.*, but the script now sets .*'lr': 0.001"
        r".*Delete the entry from the file to run it again",
    ):
        seed_spread.run("mnist", 3)
    assert seed_spread.RESULTS.read_text() == before


DRIVER = """
import sys, time
from pathlib import Path
import numpy as np, torch
from experiments import seed_spread
from helpers.training import TrainingResult
out, entry, other = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
seed_spread.RESULTS = out / "results.json"
seed_spread.load_dataset = lambda name: type("Data", (), dict(shape=(2,), d=2, true_distribution=None))
seed_spread.MADE = lambda shape, d, **kwargs: torch.nn.Linear(1, 1)

def fit(model, ds, loader_seed, verbose, **kwargs):
    # each seed of each run ends only once the other run has started the same seed: both have read
    # the file before either writes, the interleaving that lost entries
    (out / f"{entry}-{loader_seed}").touch()
    deadline = time.time() + 60
    while not (out / f"{other}-{loader_seed}").exists():
        assert time.time() < deadline, "the other run never started"
        time.sleep(0.02)
    return TrainingResult(np.zeros(1), np.zeros(2), best_epoch=1, test_loss=0.5 + loader_seed)

seed_spread.fit = fit
seed_spread.run(entry, 2)
"""


def test_two_runs_at_once_keep_each_others_entries(tmp_path):
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(tmp_path), entry, other],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for entry, other in (("shapes", "mnist"), ("mnist", "shapes"))
    ]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    assert sorted(results) == ["mnist", "shapes"]
    for entry in results:
        assert results[entry]["seeds"] == [0, 1] and results[entry]["test_loss"] == [0.5, 1.5]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == [".results.lock"]


# --- experiments/lr_selection.py ---------------------------------------------------------------------


def test_a_learning_rate_candidate_is_added_to_the_recorded_ones(tmp_path, monkeypatch):
    """Each candidate is written when done, beside the rates another run recorded (through the shared locked update)."""
    module = importlib.import_module("experiments.lr_selection")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.json")
    module.RESULTS.write_text(
        json.dumps({"mnist": {"0.001": dict(lr_record(module), best_epoch=23)}, "other": {}})
    )
    monkeypatch.setattr(module, "load_dataset", lambda name: type("Data", (), dict(shape=(2,), d=2)))
    monkeypatch.setattr(module, "MADE", lambda shape, d, **kwargs: torch.nn.Linear(1, 1))
    seen = {}

    def fit(model, ds, lr, test, verbose, **kwargs):
        seen.update(kwargs, lr=lr, test=test)
        return TrainingResult(np.zeros(1), np.array([0.3, 0.2, 0.1, 0.15]), best_epoch=2)

    monkeypatch.setattr(module, "fit", fit)
    module.run("mnist", 5e-4)
    results = json.loads(module.RESULTS.read_text())
    assert sorted(results) == ["mnist", "other"] and sorted(results["mnist"]) == ["0.0005", "0.001"]
    record = results["mnist"]["0.0005"]
    assert (record["best_epoch"], record["best_valid_loss"], record["epochs_run"]) == (2, 0.1, 3)
    assert seen["lr"] == 5e-4 and seen["test"] is False and seen["epochs"] == module.GRIDS["mnist"]["epochs"]


# --- issue 44: the records of made_mnist.py -------------------------------------------------------------


def test_the_command_of_a_selection_is_the_one_behind_its_choice_not_every_probe_under_its_width(
    experiment, monkeypatch
):
    """A second select of other candidates: `commands` prints the second one's candidates, which choose as recorded."""
    name = "1x500-K1-random"
    fake_training(experiment, monkeypatch)
    experiment.choose_optimizer(IMAGES, torch.device("cpu"), (name,), 3, [("Adam", 0.001), ("Adam", 0.003)])
    experiment.choose_optimizer(IMAGES, torch.device("cpu"), (name,), 3, [("Adagrad", 0.05)])
    selection = experiment.read_results()["selection"]
    assert selection["chosen"] == {"optimizer": "Adagrad", "lr": 0.05}
    assert selection["compared"] == [f"Adagrad 0.05 on {name}"]  # the first select's probes are not its own
    (line,) = experiment.commands(experiment.read_results())
    args = experiment.build_parser().parse_intermixed_args(line.split()[3:])
    assert (args.command, args.names, args.probe_epochs, args.candidates) == (
        "select",
        [name],
        3,
        [("Adagrad", 0.05)],
    )


def test_the_command_of_a_selection_is_printed_when_probes_of_two_lengths_are_recorded(
    experiment, monkeypatch
):
    name = "1x500-K1-random"
    fake_training(experiment, monkeypatch)
    experiment.choose_optimizer(IMAGES, torch.device("cpu"), (name,), 15, [("Adam", 0.001)])
    experiment.choose_optimizer(IMAGES, torch.device("cpu"), (name,), 3, [("Adam", 0.003)])
    (line,) = experiment.commands(experiment.read_results())
    assert line.endswith(f"select {name} --probe-epochs 3 --candidates Adam:0.003")


def test_a_selection_recorded_before_it_listed_its_probes_gets_the_command_of_all_of_them(experiment):
    """The published selections have no `compared`: every probe under them made the choice."""
    results = json.loads((EXPERIMENTS / "made_mnist" / "results.json").read_text())
    assert "compared" not in results["selection"]
    line = experiment.select_command(results["selection"])
    assert line.endswith(
        "--probe-epochs 15 --candidates Adam:0.001 Adam:0.003 Adagrad:0.1 Adagrad:0.05 "
        "Adagrad:0.01 Adagrad:0.005"
    )
    results["selection"]["probes"]["Adam 0.001 on 1x500-K1-random"]["epochs"] = 3
    with pytest.raises(
        ValueError, match=r"recorded before selections listed their probes.*run its select again"
    ):
        experiment.select_command(results["selection"])


def small_data():
    images = np.random.RandomState(0).randint(0, 2, (30, 28, 28)).astype(np.uint8)
    return Dataset("mnist", train=images, valid=images[:10], test=images[:20], d=2, shape=(28, 28))


def test_a_run_stopped_by_its_time_budget_is_kept_apart_until_it_finishes(experiment, tmp_path, monkeypatch):
    """Recorded as unfinished (results and test NLLs), skipped by every reader unless asked, and moved to the
    runs once a later session finishes it."""
    data, cpu, adam = small_data(), torch.device("cpu"), ("Adam", 1e-3)
    key, result = experiment.run("1x500-K1-random", data, 1e-4, cpu, optimizer=adam)
    experiment.record_run(key, result)
    assert result["stopped_by"].startswith("the time budget")
    results = experiment.read_results()
    assert key not in results.get("runs", {}) and key in results["unfinished"]
    assert experiment.recorded_runs(results) == {} and key in experiment.recorded_runs(
        results, unfinished=True
    )
    assert not (tmp_path / "test_nlls" / f"{key}.npy").exists()
    assert (tmp_path / "test_nlls" / "unfinished" / f"{key}.npy").exists()
    assert any(" --optimizer Adam --lr 0.001 " in line for line in experiment.commands(results))  # it goes on
    monkeypatch.setitem(experiment.SETUP, "max_epochs", 2)
    key, result = experiment.run("1x500-K1-random", data, math.inf, cpu, optimizer=adam)
    experiment.record_run(key, result)
    results = experiment.read_results()
    assert result["epochs"] == 2 and result["stopped_by"] == "the cap of 2 epochs"
    assert list(experiment.recorded_runs(results)) == [key] and "unfinished" not in results
    assert (tmp_path / "test_nlls" / f"{key}.npy").exists()
    assert not (tmp_path / "test_nlls" / "unfinished" / f"{key}.npy").exists()


def test_a_budget_stopped_run_recorded_among_the_runs_before_is_skipped_unless_asked(experiment):
    results = {
        "runs": {
            "a": {"test_nll": 90.0, "stopped_by": "early stopping (no improvement in 30 epochs)"},
            "b": {"test_nll": 99.0, "stopped_by": "the time budget (45 min for the last session of the run)"},
            "c": {"test_nll": 91.0, "stopped_by": "the cap of 1000 epochs"},
        }
    }
    assert sorted(experiment.recorded_runs(results)) == ["a", "c"]
    assert sorted(experiment.recorded_runs(results, unfinished=True)) == ["a", "b", "c"]


def test_a_run_is_not_resumed_with_another_batch_size(experiment, monkeypatch):
    data, cpu = small_data(), torch.device("cpu")
    experiment.run("1x500-K1-random", data, 1e-4, cpu, optimizer=("Adam", 1e-3))
    checkpoint = experiment.CHECKPOINTS / "1x500-K1-random-Adam0.001-last.pt"
    before = checkpoint.read_bytes()
    monkeypatch.setitem(experiment.SETUP, "batch_size", 50)
    with pytest.raises(
        SystemExit,
        match=r"holds a run of .*'batch_size': 100.*not of 1x500-K1-random-Adam0.001 as "
        r"configured now .*'batch_size': 50.*left untouched",
    ):
        experiment.run("1x500-K1-random", data, 1e-4, cpu, optimizer=("Adam", 1e-3))
    assert checkpoint.read_bytes() == before


def test_a_checkpoint_saved_before_batch_sizes_were_labelled_resumes_at_100(experiment):
    data, cpu = small_data(), torch.device("cpu")
    experiment.run("1x500-K1-random", data, 1e-4, cpu, optimizer=("Adam", 1e-3))
    checkpoint = experiment.CHECKPOINTS / "1x500-K1-random-Adam0.001-last.pt"
    saved = torch.load(checkpoint, weights_only=False)
    del saved["labels"]["batch_size"]
    torch.save(saved, checkpoint)
    key, result = experiment.run("1x500-K1-random", data, 1e-4, cpu, optimizer=("Adam", 1e-3))
    assert result["epochs"] == 2 and result["batch_size"] == 100


def test_a_probe_recorded_with_another_batch_size_is_trained_again(experiment, monkeypatch):
    name = "1x500-K1-random"
    experiment.RESULTS.write_text(
        json.dumps(
            {
                "selection": {
                    "probes": {  # recorded before: batch size 100
                        f"Adam 0.001 on {name}": probe_record(name, "Adam", 0.001, 3, 90.0)
                    }
                }
            }
        )
    )
    calls = fake_training(experiment, monkeypatch)
    experiment.choose_optimizer(IMAGES, torch.device("cpu"), (name,), 3, [("Adam", 0.001)])
    assert calls == []  # batch size 100, as when it was recorded: reused
    monkeypatch.setitem(experiment.SETUP, "batch_size", 50)
    experiment.choose_optimizer(IMAGES, torch.device("cpu"), (name,), 3, [("Adam", 0.001)])
    assert calls == [(1, 0.001, 3)]
    assert experiment.read_results()["selection"]["probes"][f"Adam 0.001 on {name}"]["batch_size"] == 50


def test_rates_that_differ_past_six_significant_digits_get_their_own_run_names_and_commands(experiment):
    name = "1x500-K1-random"
    a, b = 0.0012345671, 0.0012345674
    assert experiment.run_key(name, 0, ("Adam", a)) != experiment.run_key(name, 0, ("Adam", b))
    for lr in (0.001, 0.003, 0.05, 0.01, 0.005, 0.1, 3e-4, 5e-4, 1e-5, 2.5e-7):  # as :g wrote them before
        assert experiment.run_key(name, 1, ("Adagrad", lr)) == f"{name}-Adagrad{lr:g}-seed1"
    record = dict(seed=0, patience=10, optimizer="Adam", lr=a, configuration=name)
    line = experiment.run_command(experiment.run_key(name, 0, ("Adam", a)), record)
    args = experiment.build_parser().parse_intermixed_args(line.split()[3:])
    assert args.lr == a


@pytest.mark.parametrize(
    "args,unused",
    [
        (["select", "--init", "orthogonal", "--seed", "3"], "select does not use --seed, --init"),
        (["select", "--patience", "5"], "select does not use --patience"),
        (["select", "--optimizer", "Adam", "--lr", "0.001"], "select does not use --optimizer, --lr"),
        (["select", "--minutes", "45"], "select does not use --minutes"),
        (["select", "--no-direct"], "select does not use --no-direct"),
        (["run", "1x500-K1-random", "--candidates", "Adam:0.001"], "run does not use --candidates"),
        (["run", "1x500-K1-random", "--probe-epochs", "3"], "run does not use --probe-epochs"),
        (["commands", "--seed", "1"], "commands does not use --seed"),
        (["list", "--threads", "2"], "list does not use --threads"),
    ],
)
def test_options_a_command_does_not_use_are_refused_before_anything_runs(
    experiment, monkeypatch, capsys, args, unused
):
    monkeypatch.setattr(experiment, "load_dataset", lambda name: pytest.fail("the data were loaded"))
    monkeypatch.setattr(sys, "argv", ["made_mnist.py", *args])
    with pytest.raises(SystemExit) as error:
        experiment.main()
    assert error.value.code == 2 and unused in capsys.readouterr().err


# --- issue 44: seed_spread.py and lr_selection.py ----------------------------------------------------------


@pytest.fixture
def lr_selection(tmp_path, monkeypatch):
    """lr_selection.py as a module, writing into tmp_path, with a stand-in model and fit that record their calls."""
    module = importlib.import_module("experiments.lr_selection")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.json")
    monkeypatch.setattr(module, "load_dataset", lambda name: type("Data", (), dict(shape=(2,), d=2)))
    monkeypatch.setattr(module, "MADE", lambda shape, d, **kwargs: torch.nn.Linear(1, 1))
    module.fitted = []

    def fit(model, ds, lr, test, verbose, **kwargs):
        module.fitted.append(lr)
        return TrainingResult(np.zeros(1), np.array([0.3, 0.2, 0.1, 0.15]), best_epoch=2)

    monkeypatch.setattr(module, "fit", fit)
    return module


def lr_record(module, entry="mnist", **changes):
    """A candidate's record as lr_selection.py writes it now, with `changes` to its model or fit arguments."""
    name, model_args, fit_args, _ = module.ENTRIES[entry]
    fit_args = {k: v for k, v in fit_args.items() if k != "lr"} | dict(epochs=module.GRIDS[entry]["epochs"])
    record = json.loads(json.dumps(dict(model=model_args, fit=fit_args)))
    for part, value in changes.items():
        record[part] |= value
    return dict(record, valid_losses=[0.3, 0.2], best_epoch=1, best_valid_loss=0.2, epochs_run=1)


@pytest.mark.parametrize(
    "changes,named",
    [
        (dict(fit={"patience": 5}), r"'patience': 5"),
        (dict(fit={"epochs": 20}), r"'epochs': 20"),
        (dict(model={"hidden_sizes": [256]}), r"'hidden_sizes': \[256\]"),
    ],
)
def test_a_learning_rate_candidate_is_not_added_beside_candidates_of_another_model_patience_or_cap(
    lr_selection, monkeypatch, changes, named
):
    lr_selection.RESULTS.write_text(json.dumps({"mnist": {"0.001": lr_record(lr_selection, **changes)}}))
    before = lr_selection.RESULTS.read_text()
    monkeypatch.setattr(lr_selection, "load_dataset", lambda name: pytest.fail("the data were loaded"))
    with pytest.raises(
        SystemExit,
        match=rf"records 'mnist' candidates \['0.001'\] with .*{named}.*but the script now "
        r"sets .*Delete the entry",
    ):
        lr_selection.run("mnist", 5e-4)
    assert lr_selection.RESULTS.read_text() == before and lr_selection.fitted == []


def test_a_rerun_of_lr_selection_skips_the_candidates_recorded_with_the_same_settings(
    lr_selection, monkeypatch, capsys
):
    recorded = lr_record(lr_selection)
    lr_selection.RESULTS.write_text(json.dumps({"mnist": {"0.001": recorded}}))
    monkeypatch.setattr(sys, "argv", ["lr_selection.py", "mnist"])
    lr_selection.main()
    assert lr_selection.fitted == [5e-4, 2e-3, 5e-3]  # not 1e-3 again
    results = json.loads(lr_selection.RESULTS.read_text())["mnist"]
    assert sorted(results) == ["0.0005", "0.001", "0.002", "0.005"] and results["0.001"] == recorded
    assert "mnist, lr=0.001: recorded with the same settings, skipped" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["lr_selection", "seed_spread"])
@pytest.mark.parametrize(
    "text,problem",
    [
        ("{", "is not valid JSON"),
        ("[]", "holds a list, not an object of entries"),
        ('{"mnist": 3}', "has 'mnist' = 3, not an object"),
    ],
)
def test_a_damaged_results_file_stops_lr_selection_and_seed_spread_before_training_naming_the_file(
    name, text, problem, tmp_path, monkeypatch
):
    module = importlib.import_module(f"experiments.{name}")
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.json")
    module.RESULTS.write_text(text)
    monkeypatch.setattr(module, "load_dataset", lambda name: pytest.fail("the data were loaded"))
    monkeypatch.setattr(module, "fit", lambda *args, **kwargs: pytest.fail("a model was trained"))
    monkeypatch.setattr(sys, "argv", [f"{name}.py", "mnist"])
    with pytest.raises(SystemExit, match=re.escape(problem)) as error:
        module.main()
    assert str(module.RESULTS) in str(error.value) and "left untouched" in str(error.value)
    assert module.RESULTS.read_text() == text


def fake_seed_spread_fits(seed_spread, monkeypatch, devices):
    """seed_spread's data, model and fit replaced by stand-ins; seed s runs on devices[s]."""
    monkeypatch.setattr(
        seed_spread,
        "load_dataset",
        lambda name: type("Data", (), dict(shape=(2,), d=2, true_distribution=None)),
    )
    monkeypatch.setattr(seed_spread, "MADE", lambda shape, d, **kwargs: torch.nn.Linear(1, 1))
    ran = []

    def fit(model, ds, loader_seed, verbose, **kwargs):
        ran.append(loader_seed)
        return TrainingResult(np.zeros(1), np.zeros(2), best_epoch=1, test_loss=0.5)

    monkeypatch.setattr(seed_spread, "fit", fit)
    monkeypatch.setattr(seed_spread, "describe_device", lambda device: devices[ran[-1]])


def test_seeds_run_on_different_devices_are_each_labelled_with_their_own(seed_spread, monkeypatch):
    fake_seed_spread_fits(
        seed_spread, monkeypatch, ["cpu (1 threads)", "cuda (NVIDIA H100)", "cuda (NVIDIA H100)"]
    )
    seed_spread.run("mnist", 3)
    record = json.loads(seed_spread.RESULTS.read_text())["mnist"]
    assert record["devices"] == ["cpu (1 threads)", "cuda (NVIDIA H100)", "cuda (NVIDIA H100)"]
    assert record["device"] == "cpu (1 threads) for seed 0; cuda (NVIDIA H100) for seeds 1, 2"


def test_a_seed_added_to_an_entry_recorded_with_one_device_label_keeps_that_label_on_its_last_seed(
    seed_spread, monkeypatch
):
    """Before devices were per seed, the one label was the last seed's: the earlier seeds' devices are unknown."""
    name, model_args, fit_args, notebook = seed_spread.ENTRIES["mnist"]
    seed_spread.RESULTS.write_text(
        json.dumps(
            {
                "mnist": dict(
                    dataset=name,
                    notebook=notebook,
                    model=model_args,
                    fit=fit_args,
                    seeds=[0, 1],
                    test_loss=[0.1, 0.1],
                    best_epoch=[5, 6],
                    seconds=[1.0, 1.0],
                    device="cpu (1 threads)",
                )
            }
        )
    )
    fake_seed_spread_fits(seed_spread, monkeypatch, [None, None, "cuda (NVIDIA H100)"])
    seed_spread.run("mnist", 3)
    record = json.loads(seed_spread.RESULTS.read_text())["mnist"]
    assert record["seeds"] == [0, 1, 2] and record["devices"] == [
        None,
        "cpu (1 threads)",
        "cuda (NVIDIA H100)",
    ]
    assert (
        record["device"]
        == "not recorded for seed 0; cpu (1 threads) for seed 1; cuda (NVIDIA H100) for seed 2"
    )
    assert seed_spread.seed_devices(
        json.loads((EXPERIMENTS / "seed_spread" / "results.json").read_text())["mnist"]
    ) == [None, None, None, None, "cpu (1 threads)"]


# --- experiments/direct_connections.py ----------------------------------------------------------------------


@pytest.fixture
def direct_connections(tmp_path, monkeypatch):
    """The script writing into tmp_path, with a tiny MADE on random 2 x 2 images instead of notebook 4's data."""
    module = importlib.import_module("experiments.direct_connections")
    monkeypatch.setattr(module, "HERE", tmp_path)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.json")
    images = np.random.RandomState(0).randint(0, 2, (40, 2, 2)).astype(np.uint8)
    data = Dataset("shapes", train=images, valid=images[:10], test=images[:10], d=2, shape=(2, 2))
    monkeypatch.setattr(module, "load_dataset", lambda name: data)
    entries = {
        e: (e, dict(hidden_sizes=[4]), dict(lr=1e-2, epochs=2, patience=1), 4) for e in module.DATASETS
    }
    monkeypatch.setattr(module, "ENTRIES", entries)
    return module


def test_both_models_are_trained_on_the_same_recipe_and_keep_each_validation_images_nll(
    direct_connections, tmp_path
):
    direct_connections.train("shapes", True)
    direct_connections.train("shapes", False)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["shapes-direct"]["model"] == dict(hidden_sizes=[4], direct=True)
    assert results["shapes-nodirect"]["model"] == dict(hidden_sizes=[4], direct=False)
    assert (
        results["shapes-direct"]["fit"]
        == results["shapes-nodirect"]["fit"]
        == dict(lr=1e-2, epochs=2, patience=1)
    )
    for key in ("shapes-direct", "shapes-nodirect"):
        nlls = np.load(tmp_path / f"{key}.npy")
        assert nlls.shape == (10,) and nlls.mean() == pytest.approx(results[key]["valid_loss"], rel=1e-5)


def test_a_model_recorded_with_other_settings_is_refused_and_one_recorded_with_these_is_skipped(
    direct_connections, tmp_path, monkeypatch, capsys
):
    direct_connections.train("mnist", True)
    monkeypatch.setattr(direct_connections, "fit", lambda *args, **kwargs: pytest.fail("trained again"))
    direct_connections.train("mnist", True)
    assert "mnist-direct: recorded, skipped" in capsys.readouterr().out
    entries = dict(
        direct_connections.ENTRIES, mnist=("mnist", dict(hidden_sizes=[8]), dict(lr=1e-2, epochs=2), 4)
    )
    monkeypatch.setattr(direct_connections, "ENTRIES", entries)
    before = (tmp_path / "results.json").read_text()
    with pytest.raises(SystemExit, match="records mnist-direct with other settings than the script's"):
        direct_connections.train("mnist", True)
    assert (tmp_path / "results.json").read_text() == before
