"""A search killed with SIGKILL after its first checkpoint and started again with the same command ends
bit-identical (genotype, architecture parameters, metrics) to an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CACHE = os.environ.get("JAXNAS_TEST_JIT_CACHE", str(Path(tempfile.gettempdir()) / "jaxnas-test-jit-cache"))
ARGS = ["--space", "nb201", "--method", "darts", "--optimization", "single-level", "--channels", "2", "--layers", "1",
        "--image-size", "8", "--batch-size", "8", "--epochs", "2", "--steps-per-epoch", "2", "--checkpoint-every", "2",
        "--log-every", "1", "--seed", "3", "--no-progress", "--conv-impl", "xla"]


def command(workdir, *extra):
    return [sys.executable, "-m", "jaxnas.cli", "search", *ARGS, "--workdir", str(workdir), *extra]


def env():
    e = dict(os.environ, JAXNAS_COMPILATION_CACHE=CACHE, PYTHONPATH=str(ROOT))
    e.pop("XLA_FLAGS", None)
    return e


def outputs(workdir):
    metrics = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    metrics = [{k: v for k, v in r.items() if k != "time"} for r in metrics]
    with np.load(workdir / "arch.npz") as f:
        arch = {k: f[k] for k in f.files}
    return json.loads((workdir / "genotype.json").read_text()), arch, metrics


def test_sigkill_then_resume_is_bit_identical(tmp_path):
    ref, run = tmp_path / "ref", tmp_path / "run"
    subprocess.run(command(ref), env=env(), check=True, capture_output=True, timeout=600)

    # slow the steps down so the kill lands mid-run, after the first checkpoint
    proc = subprocess.Popen(command(run, "--debug-step-delay", "0.5"), env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not (run / "checkpoints" / "2").is_dir():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.time() < deadline, "no checkpoint written in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "genotype.json").exists(), "the run finished before it was killed"

    done = subprocess.run(command(run), env=env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    g_ref, arch_ref, metrics_ref = outputs(ref)
    g_run, arch_run, metrics_run = outputs(run)
    assert g_run == g_ref
    assert arch_run.keys() == arch_ref.keys()
    for k in arch_ref:
        np.testing.assert_array_equal(arch_run[k], arch_ref[k])
    assert metrics_run == metrics_ref
    assert g_ref["arch"] in done.stdout
