"""The growing search: schedules, CLI, and SIGKILL + resume across a change of shape is bit-identical."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxnas.runners.grow import GrowConfig, events

from tests.runners.test_resume import ROOT, env  # same helpers as the fixed-size resume test

ARGS = ["--grow", "grow-then-prune", "--image-size", "8", "--batch-size", "8", "--epochs", "3",
        "--steps-per-epoch", "2", "--channels", "2", "--max-width", "3", "--width-step", "1", "--cells", "1",
        "--max-nodes", "2", "--grow-epochs", "1", "--prune-threshold", "0.19", "--checkpoint-every", "1",
        "--log-every", "1", "--seed", "2", "--no-progress"]


def command(workdir, *extra):
    return [sys.executable, "-m", "jaxnas.cli", "search", *ARGS, "--workdir", str(workdir), *extra]


def test_schedules():
    assert events(GrowConfig(schedule="grow-then-prune", epochs=5, grow_epochs=2)) == {
        0: "grow", 1: "grow", 2: "prune", 3: "prune"}
    assert events(GrowConfig(schedule="interleaved", epochs=5)) == {0: "grow", 1: "prune", 2: "grow", 3: "prune"}


@pytest.mark.parametrize("bad, message", [
    (dict(schedule="sideways"), "unknown growth schedule"),
    (dict(max_width=2, width=4), "max_width"),
    (dict(optimization="bilevel-2nd"), "supports optimization"),
    (dict(prune_threshold=1.0), "prune_threshold"),
    (dict(ops=("none", "conv_9x9")), "unknown op"),
])
def test_bad_config_is_one_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        GrowConfig(**bad)


def test_cli_rejects_flags_that_do_not_apply(tmp_path):
    out = subprocess.run(command(tmp_path / "x", "--method", "gdas"), env=env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 2
    assert "--method" in out.stderr and "growing search" in out.stderr and "Traceback" not in out.stderr


def outputs(workdir):
    metrics = [{k: v for k, v in json.loads(line).items() if k != "time"}
               for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return json.loads((workdir / "genotype.json").read_text()), metrics, (workdir / "specs.jsonl").read_text()


@pytest.mark.slow
def test_growing_search_sigkill_after_growth_then_resume_is_bit_identical(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    done = subprocess.run(command(ref), env=env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "grown supernet" in done.stdout and "derived:" in done.stdout
    g_ref, metrics_ref, specs_ref = outputs(ref)
    morphs = [m for m in metrics_ref if m["kind"] == "morph"]
    assert [m["event"] for m in morphs] == ["grow", "prune"]
    assert morphs[0]["applied"] == ["add_node(cell 0)", "widen(2 -> 3)"]
    assert g_ref["spec"]["width"] == 3 and len(g_ref["spec"]["cells"][0]["nodes"]) == 2

    # kill after the growth at the end of epoch 0 (checkpoint 2 holds the grown shape), before the end
    proc = subprocess.Popen(command(run, "--debug-step-delay", "1.0"), env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 600
    while not (run / "checkpoints" / "3").is_dir():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "no checkpoint after the growth in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "genotype.json").exists(), "the run finished before it was killed"

    resumed = subprocess.run(command(run), env=env(), capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "width 3" in resumed.stderr
    g_run, metrics_run, specs_run = outputs(run)
    assert g_run == g_ref
    assert metrics_run == metrics_ref
    assert specs_run == specs_ref

    # the derived spec trains from scratch with `jaxnas train` (search -> derive -> train, end to end)
    train = subprocess.run([sys.executable, "-m", "jaxnas.cli", "train", "--genotype", str(ref / "genotype.json"),
                            "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8", "--image-size", "8",
                            "--eval-examples", "16", "--no-progress", "--workdir", str(tmp_path / "train")],
                           env=env(), capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr
    result = json.loads((tmp_path / "train" / "result.json").read_text())
    assert result["space"] == "grow-conv" and result["genotype"]["derived"] == g_ref["derived"]
    assert 0.0 <= result["test_accuracy"] <= 1.0 and result["params"] > 0
