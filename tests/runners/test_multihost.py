"""A multi-host image search from the command line: two local processes of 2 CPU devices each run the same
command; the batch is split over the 4 devices, process 0 alone writes, and the result equals one process on 4
devices."""

import json
import os
import socket
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers.resume import env as base_env

pytestmark = pytest.mark.slow
ARGS = ["search", "--space", "nb201", "--channels", "2", "--layers", "1", "--image-size", "8", "--batch-size", "8",
        "--epochs", "1", "--steps-per-epoch", "3", "--checkpoint-every", "2", "--log-every", "1", "--seed", "1",
        "--no-progress", "--conv-impl", "xla"]
CLI = [sys.executable, "-m", "jaxnas.cli"]


def env(devices: int) -> dict:
    return {**base_env(), "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", "JAX_PLATFORMS": "cpu"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_pair(workdir):
    """The multi-host command in two local processes; returns their outputs."""
    port = str(free_port())
    procs = [subprocess.Popen([*CLI, *ARGS, "--workdir", str(workdir), "--coordinator", f"localhost:{port}",
                               "--num-processes", "2", "--process-id", str(pid)], env=env(2),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for pid in (0, 1)]
    try:
        outs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0], outs[0][-3000:] + outs[1][-3000:]
    return outs


def arch(workdir):
    with np.load(workdir / "arch.npz") as f:
        return {k: f[k] for k in f.files}


def test_two_processes_equal_one_process_on_as_many_devices_and_resume(tmp_path):
    ref, multi = tmp_path / "ref", tmp_path / "multi"
    run_pair(multi)
    single = subprocess.run([*CLI, *ARGS, "--workdir", str(ref), "--devices", "4"], env=env(4), capture_output=True,
                            text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    g_ref, g_multi = (json.loads((w / "genotype.json").read_text()) for w in (ref, multi))
    assert g_multi["arch"] == g_ref["arch"]
    a_ref, a_multi = arch(ref), arch(multi)
    for k in a_ref:
        np.testing.assert_allclose(a_multi[k], a_ref[k], rtol=1e-4, atol=1e-6)
    steps = [json.loads(line) for line in (multi / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["kind"] == "step"] == [1, 2, 3]  # one writer: each record once
    assert sorted(p.name for p in (multi / "checkpoints").iterdir()) == ["2", "3"]

    # both processes resume from the same checkpoint and end where the uninterrupted run ended
    shutil.rmtree(multi / "checkpoints" / "3")
    outs = run_pair(multi)
    assert all("resuming" in out for out in outs)
    for k, v in arch(multi).items():
        np.testing.assert_array_equal(v, a_multi[k])
