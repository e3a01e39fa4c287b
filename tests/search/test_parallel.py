"""Data parallel: the step on 8 forced CPU devices equals the 1-device step.

jax may already be initialised with one device by other test modules in this pytest process, and the device count
is fixed at initialisation, so the check runs in a fresh interpreter (tests/search/parallel_check.py) that sets
XLA_FLAGS=--xla_force_host_platform_device_count=8 before importing jax.
"""

import os
import socket
import subprocess
import sys

import jax
import pytest

from jaxnas.search import parallel

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.slow
def test_eight_devices_equal_one_device():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "parallel_check.py")], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0 and "PARALLEL OK" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-5000:]


def test_mesh_helpers_on_the_local_devices():
    mesh = parallel.data_mesh()
    assert mesh.axis_names == ("data",) and mesh.size == jax.device_count()
    with pytest.raises(ValueError, match="needs at least one device"):
        parallel.data_mesh([])
    with pytest.raises(ValueError, match="first \\(batch\\) axis must divide evenly"):
        parallel.shard_batch({"image": jax.numpy.zeros(())}, mesh)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("JAXNAS_TEST_MULTIHOST"), reason="about 25 s on 2 busy cores; set JAXNAS_TEST_MULTIHOST=1 to run"
)
def test_two_processes_equal_one_device():
    """Multi-host start-up through jax.distributed.initialize, with two local processes of 2 CPU devices each."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    port, script = str(_free_port()), os.path.join(HERE, "multihost_check.py")
    procs = [
        subprocess.Popen([sys.executable, script, port, str(pid)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for pid in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert all(p.returncode == 0 for p in procs) and "MULTIHOST OK" in outs[0], outs[0][-4000:] + outs[1][-4000:]
