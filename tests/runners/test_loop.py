"""The one loop on a toy task (docs/extending.md, "Add a runner task", shows the same task): logs, epoch records,
checkpoints, resume after a crash, the NaN stop, and workdir identity."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from jaxnas.runners import loop


class Walk(loop.Task):
    """A random walk: the state is a number, each step adds a value derived from the step index."""

    kind = "walk"
    logs = ("peaks",)

    def __init__(self, steps=6, per_epoch=3, crash_at=None, nan_at=None, scale=1.0):
        self.total_steps, self.steps_per_epoch = steps, per_epoch
        self.config = self.identity = {"steps": steps, "per_epoch": per_epoch, "scale": scale}
        self.crash_at, self.nan_at, self.scale = crash_at, nan_at, scale
        self.peak = None  # the task's own resumable value

    def init(self):
        return {"x": jnp.zeros(())}, [("peaks", {"step": 0, "peak": 0.0})]

    def resume(self, state, meta):
        self.peak = meta["peak"]
        return state

    def meta(self):
        return {"peak": self.peak}

    def step(self, state, index):
        if index == self.crash_at:
            raise KeyboardInterrupt("simulated crash")
        x = state["x"] + self.scale * np.sin(index)
        loss = jnp.nan if index == self.nan_at else x * x
        return {"x": x}, {"loss": loss}

    def after_step(self, state, done, epoch):
        x = float(state["x"])
        if self.peak is None or x > self.peak:
            self.peak = x
            return state, [("peaks", {"step": done, "peak": x})], False
        return state, [], False

    def epoch_fields(self, state, epoch):
        return {"x": float(state["x"])}

    def finish(self, state, run):
        result = {"x": float(state["x"]), "peak": self.peak}
        run.write_json("result.json", result)
        return result


def records(workdir, name="metrics.jsonl"):
    return [{k: v for k, v in json.loads(line).items() if k != "time"}
            for line in (workdir / name).read_text().splitlines()]


def options(workdir, **changes):
    return loop.LoopOptions(workdir=str(workdir), checkpoint_every=2, log_every=1, progress=False, **changes)


def test_a_task_runs_logs_and_checkpoints(tmp_path):
    result, run = loop.run(Walk(), options(tmp_path))
    assert run.resumed_from is None and result == json.loads((tmp_path / "result.json").read_text())
    metrics = records(tmp_path)
    assert [r["kind"] for r in metrics] == ["step"] * 3 + ["epoch"] + ["step"] * 3 + ["epoch"]
    assert metrics[3]["epoch"] == 0 and metrics[3]["loss"] == pytest.approx(np.mean([r["loss"] for r in metrics[:3]]))
    assert records(tmp_path, "peaks.jsonl")[0] == {"step": 0, "peak": 0.0}
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["4", "6"]
    assert json.loads((tmp_path / "config.json").read_text())["kind"] == "walk"


def test_a_crashed_run_resumes_to_the_same_end(tmp_path):
    ref, _ = loop.run(Walk(), options(tmp_path / "ref"))
    with pytest.raises(KeyboardInterrupt):
        loop.run(Walk(crash_at=5), options(tmp_path / "run"))
    result, run = loop.run(Walk(), options(tmp_path / "run"))
    assert run.resumed_from == 4 and result == ref
    assert records(tmp_path / "run") == records(tmp_path / "ref")  # the logs were cut back to the checkpoint
    assert records(tmp_path / "run", "peaks.jsonl") == records(tmp_path / "ref", "peaks.jsonl")


def test_a_nan_loss_stops_and_keeps_the_good_checkpoint(tmp_path):
    with pytest.raises(loop.DivergedError, match=r"loss is nan at step 3 \(epoch 1, step 0 of 3\); the walk stopped "
                                                 r"and the last good checkpoint is step 2"):
        loop.run(Walk(nan_at=3), options(tmp_path))
    assert (tmp_path / "checkpoints" / "2").is_dir() and not (tmp_path / "result.json").exists()


def test_another_config_in_the_same_workdir_is_refused(tmp_path):
    loop.run(Walk(), options(tmp_path))
    with pytest.raises(ValueError, match=r"holds a walk run with a different config \(scale: 1.0 -> 2.0\)"):
        loop.run(Walk(scale=2.0), options(tmp_path))
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        options(tmp_path, keep_checkpoints=2).__class__(workdir=str(tmp_path), checkpoint_every=0)


def test_without_a_workdir_nothing_is_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, run = loop.run_somewhere(Walk(), None, checkpoint_every=6, progress=False)
    assert result["x"] == pytest.approx(sum(np.sin(i) for i in range(6)), rel=1e-6)
    assert not run.workdir.exists() and list(tmp_path.iterdir()) == []


def test_report_without_tqdm_prints_the_line(monkeypatch, capsys):
    monkeypatch.setattr(loop, "tqdm", None)  # a bare accelerator image without tqdm: no bar, lines still shown
    loop.report("epoch 1: loss 0.5")
    assert capsys.readouterr().err == "epoch 1: loss 0.5\n"


def tensorboard_scalars(directory):
    """``{tag: [(step, value), ...]}`` read back from the TFRecord event files in ``directory``, as TensorBoard
    reads them: a restart's ``SessionLog.START`` at step s drops the events from step s on written before it."""
    import struct

    from tensorboardX.proto import event_pb2

    out = {}
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at:at + 8])
            event = event_pb2.Event.FromString(data[at + 12:at + 12 + length])
            at += 12 + length + 4
            if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
                out = {tag: [(s, v) for s, v in vals if s < event.step] for tag, vals in out.items()}
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_tensorboard_events_mirror_the_metrics(tmp_path):
    pytest.importorskip("tensorboardX")  # part of the test extra; the loop itself never needs it
    options = loop.LoopOptions(workdir=str(tmp_path), log_every=1, checkpoint_every=2, progress=False,
                               tensorboard=True)
    with pytest.raises(KeyboardInterrupt):
        loop.run(Walk(crash_at=4), options)
    loop.run(Walk(), options)
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    logged = [(r["step"], r["loss"]) for r in records(tmp_path) if r["kind"] == "step"]
    got = scalars["step/loss"]
    assert [s for s, _ in got] == [s for s, _ in logged] == [1, 2, 3, 4, 5, 6]  # resumed at 4: nothing twice
    np.testing.assert_allclose([v for _, v in got], [v for _, v in logged], rtol=1e-6)
    assert [s for s, _ in scalars["epoch/x"]] == [3, 6]


def test_tensorboard_without_tensorboardx_is_one_clear_error(tmp_path, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_tensorboardx(name, *args, **kwargs):
        if name.startswith("tensorboardX"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboardx)
    with pytest.raises(ValueError, match=r"pip install 'jaxnas\[tensorboard\]'"):
        loop.run(Walk(), loop.LoopOptions(workdir=str(tmp_path), progress=False, tensorboard=True))


class StopAtPeak(Walk):
    """Stops after the first step whose x passes 1 (the decision kept in the checkpoint's meta)."""

    def __init__(self, **kw):
        super().__init__(steps=9, **kw)
        self.stop = False

    def after_step(self, state, done, epoch):
        state, records, save_now = super().after_step(state, done, epoch)
        self.stop = self.stop or float(state["x"]) > 1.0
        return state, records, save_now

    def stopped(self):
        return self.stop

    def meta(self):
        return {**super().meta(), "stop": self.stop}

    def resume(self, state, meta):
        self.stop = meta["stop"]
        return super().resume(state, meta)


def test_a_task_that_stops_ends_early_and_stays_stopped(tmp_path):
    result, run = loop.run(StopAtPeak(), options(tmp_path))
    assert run.total_steps == 3  # x = sin(0) + sin(1) + sin(2) = 1.75 passes 1 at step 3 (of 9)
    assert result["x"] == pytest.approx(sum(np.sin(i) for i in range(3)), rel=1e-6)
    again_result, again = loop.run(StopAtPeak(), options(tmp_path))
    assert again.resumed_from == run.total_steps and again.total_steps == run.total_steps
    assert again_result == result and (tmp_path / "checkpoints" / str(run.total_steps)).is_dir()
