"""bench/speed.py: bad command lines are usage errors, given before any data are loaded."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "bench" / "speed.py"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--rounds", "0"], "--rounds must be at least 1 (each ratio is a median over rounds), got 0"),
        (["--rounds", "-3"], "--rounds must be at least 1"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
    ],
)
def test_bad_counts_are_usage_errors_before_the_data_load(args, message, monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location("speed", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "load_dataset", lambda name: pytest.fail("the data were loaded"))
    monkeypatch.setattr(sys, "argv", ["speed.py", *args])
    with pytest.raises(SystemExit) as error:
        bench.main()
    assert error.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "device,reason",
    [
        ("cuda:99", "cannot be used here"),  # absent on every machine: CPU-only, or fewer than 100 GPUs
        ("gpu", "cannot be used here"),  # no device torch knows
    ],
)
def test_a_device_that_cannot_be_used_here_is_a_usage_error_naming_device_before_the_data_load(
    device, reason, monkeypatch, capsys
):
    spec = importlib.util.spec_from_file_location("speed", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "load_dataset", lambda name: pytest.fail("the data were loaded"))
    monkeypatch.setattr(sys, "argv", ["speed.py", "--device", device])
    with pytest.raises(SystemExit) as error:
        bench.main()
    err = capsys.readouterr().err
    assert error.value.code == 2 and f"--device {device} {reason}" in err and "--device cpu" in err
