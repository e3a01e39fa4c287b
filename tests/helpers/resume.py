"""SIGKILL-then-rerun: run a command to the end in one workdir; in another, kill the same command with SIGKILL
right after its first checkpoint, start it again, and compare what the two runs wrote."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = os.environ.get("JAXNAS_TEST_JIT_CACHE", str(Path(tempfile.gettempdir()) / "jaxnas-test-jit-cache"))


def env() -> dict:
    e = dict(os.environ, JAXNAS_COMPILATION_CACHE=CACHE, PYTHONPATH=str(ROOT), JAXNAS_NO_PROGRESS="1")
    e.pop("XLA_FLAGS", None)
    return e


def jaxnas(*args) -> list[str]:
    return [sys.executable, "-m", "jaxnas.cli", *args]


def python(script: str, *args) -> list[str]:
    return [sys.executable, "-c", script, *args]


def metrics(workdir: Path, drop=("time", "seconds")) -> list[dict]:
    """metrics.jsonl without its wall-clock fields."""
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def kill_then_resume(command, ref: Path, run: Path, checkpoint: int, finished: str, timeout: float = 600):
    """Run ``command(ref)`` to the end; run ``command(run, slow=True)`` until ``run/checkpoints/<checkpoint>``
    exists, SIGKILL it (``run/finished`` must not exist yet), run ``command(run)`` again. Returns the rerun's
    CompletedProcess (text)."""
    done = subprocess.run(command(ref), env=env(), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    proc = subprocess.Popen(command(run, slow=True), env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while not (run / "checkpoints" / str(checkpoint)).is_dir():
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.time() < deadline, "no checkpoint written in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / finished).exists(), "the run finished before it was killed"
    again = subprocess.run(command(run), env=env(), capture_output=True, text=True, timeout=timeout)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming" in again.stderr
    return again


def stop_then_resume_in_process(main, argv, ref: Path, run: Path) -> None:
    """``main(argv(ref))`` to the end; ``main(argv(run, "--inject-nan-at", "3"))`` stops at step 3 with exit code 3
    (a diverged run keeps its last checkpoint); ``main(argv(run))`` resumes it to the end. In this process (the CLI
    called as a function), for tests of one method's search."""
    assert main(argv(ref)) == 0
    with pytest.raises(SystemExit) as stopped:
        main(argv(run, "--inject-nan-at", "3"))
    assert stopped.value.code == 3
    assert main(argv(run)) == 0
