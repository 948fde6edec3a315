"""experiments/made_mnist.py: bad input gets a clear error, and an existing checkpoint is never touched by one."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.data import Dataset

SCRIPT = Path(__file__).resolve().parent.parent / "experiments" / "made_mnist.py"


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    """The script as a module, writing into tmp_path instead of experiments/made_mnist/."""
    spec = importlib.util.spec_from_file_location("made_mnist", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "HERE", tmp_path)
    monkeypatch.setattr(module, "RESULTS", tmp_path / "results.json")
    monkeypatch.setattr(module, "CHECKPOINTS", tmp_path / "checkpoints")
    return module


@pytest.mark.parametrize("args,message", [
    (["run", "1x500-K3-random"], "unknown configuration(s) 1x500-K3-random"),
    (["run"], "name the configurations to run"),
    (["run", "1x500-K1-random", "--minutes", "0"], "--minutes must be positive, got 0.0"),
    (["run", "1x500-K1-random", "--minutes", "-5"], "--minutes must be positive, got -5.0"),
])
def test_bad_command_lines_are_refused_with_the_reason(args, message):
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr


def test_a_run_needs_a_chosen_optimizer(experiment):
    with pytest.raises(SystemExit, match="run `python experiments/made_mnist.py select` first"):
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
    data = Dataset("mnist", images, images, d=2, shape=(28, 28), valid=images)
    with pytest.raises(SystemExit, match=r"holds a run of .*'num_masks': 2.*not of 1x500-K4-random.*left untouched"):
        experiment.run("1x500-K4-random", data, 1, torch.device("cpu"))
    assert checkpoint.read_bytes() == before


def test_a_failed_write_keeps_the_old_results_and_leaves_no_temporary_file(experiment, tmp_path):
    experiment.RESULTS.write_text(json.dumps({"runs": {"1x500-K1-random": {"test_nll": 92.68}}}))
    before = experiment.RESULTS.read_bytes()
    with pytest.raises(TypeError, match="not JSON serializable"):
        with experiment.results_to_update() as results:
            results["runs"]["1x500-K2-random"] = {"test_nll": object()}   # fails in json.dumps
    assert experiment.RESULTS.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock", "results.json"]
    with experiment.results_to_update() as results:
        results["runs"]["1x500-K2-random"] = {"test_nll": 92.23}
    assert experiment.read_results()["runs"]["1x500-K2-random"] == {"test_nll": 92.23}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.lock", "results.json"]
