"""Every runner resumes: killed with SIGKILL after a checkpoint and started again with the same command, a run ends
bit-identical to an uninterrupted one (everything it wrote, wall-clock fields aside). The image search and the
growing conv search have their own tests (test_resume.py, test_grow.py)."""

import json

import pytest

from tests.helpers.resume import jaxnas, kill_then_resume, metrics, python

pytestmark = pytest.mark.slow

CLOCK = ("seconds", "compile_seconds", "search_seconds", "time")


def result(workdir, name="result.json"):
    data = json.loads((workdir / name).read_text())
    for k in CLOCK:
        data.pop(k, None)
    for record in data.get("transforms", []):
        record.pop("seconds", None)
    return data


def test_retrain(tmp_path):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"

    def command(workdir, slow=False):
        return jaxnas("train", "--genotype", arch, "--channels", "2", "--layers", "1", "--image-size", "8",
                      "--batch-size", "8", "--epochs", "2", "--steps-per-epoch", "3", "--checkpoint-every", "2",
                      "--log-every", "1", "--eval-examples", "16", "--no-progress", "--conv-impl", "xla",
                      "--workdir", str(workdir), *(["--debug-step-delay", "0.5"] if slow else []))

    kill_then_resume(command, tmp_path / "ref", tmp_path / "run", checkpoint=2, finished="result.json")
    assert result(tmp_path / "run") == result(tmp_path / "ref")
    assert metrics(tmp_path / "run") == metrics(tmp_path / "ref")


FORECAST = """
import sys
from jaxnas.runners.forecast import ForecastConfig, run_forecast
run_forecast(ForecastConfig(dataset="exchange_rate", horizon=3, window=24, highway_window=4, cell="gru", hidden=4,
                            steps=12, batch_size=16, eval_every=4, log_every=1, checkpoint_every=4, progress=False,
                            workdir=sys.argv[1], debug_step_delay=float(sys.argv[2])))
"""


def test_forecast_with_the_best_state(tmp_path):
    def command(workdir, slow=False):
        return python(FORECAST, str(workdir), "0.5" if slow else "0")

    kill_then_resume(command, tmp_path / "ref", tmp_path / "run", checkpoint=4, finished="result.json")
    ref, run = result(tmp_path / "ref"), result(tmp_path / "run")
    assert run == ref and ref["best_step"] in (4, 8, 12)
    assert metrics(tmp_path / "run") == metrics(tmp_path / "ref")


def test_darts_rnn_search_from_the_command_line(tmp_path):
    def command(workdir, slow=False):
        return jaxnas("search", "--space", "darts-rnn", "--steps", "8", "--channels", "8", "--bptt", "10",
                      "--checkpoint-every", "3", "--log-every", "1", "--no-progress", "--workdir", str(workdir),
                      *(["--debug-step-delay", "0.5"] if slow else []))

    again = kill_then_resume(command, tmp_path / "ref", tmp_path / "run", checkpoint=3, finished="result.json")
    assert result(tmp_path / "run") == result(tmp_path / "ref")
    assert result(tmp_path / "run", "genotype.json") == result(tmp_path / "ref", "genotype.json")
    assert metrics(tmp_path / "run") == metrics(tmp_path / "ref")
    assert json.loads((tmp_path / "ref" / "genotype.json").read_text())["arch"] in again.stdout


def test_recurrent_growing_search_from_the_command_line(tmp_path):
    def command(workdir, slow=False):
        return jaxnas("search", "--space", "grow-rnn", "--task", "forecast", "--grow", "grow-then-prune",
                      "--steps", "30", "--transform-every", "10", "--checkpoint-every", "5", "--channels", "4",
                      "--batch-size", "16", "--log-every", "1", "--no-progress", "--workdir", str(workdir),
                      *(["--debug-step-delay", "0.4"] if slow else []))

    # checkpoint 10 is written right after the first growth: the rerun must rebuild the grown shapes
    kill_then_resume(command, tmp_path / "ref", tmp_path / "run", checkpoint=10, finished="result.json")
    ref, run = result(tmp_path / "ref"), result(tmp_path / "run")
    assert run == ref and [t["event"] for t in ref["transforms"]][:1] == ["grow"]
    drop = ("time", "seconds")
    assert metrics(tmp_path / "run", drop) == metrics(tmp_path / "ref", drop)
