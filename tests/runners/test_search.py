"""The search loop: determinism, warm-up, config checks, NaN stop, corrupted checkpoints; and checkpoint.py.

All runs use one tiny config (NB201 supernet C=2, N=1, 8x8 crops, batch 8, 2-4 steps) so the jitted steps compile
once per test session (with the persistent compilation cache, once per machine).
"""

import json
import os
import tempfile
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers.resume import stop_then_resume_in_process
from jaxnas.cli import main
from jaxnas.io.checkpoint import CheckpointError, Checkpoints, flatten_state, load_arrays, unflatten_state
from jaxnas.runners.loop import DivergedError
from jaxnas.runners.search import SearchConfig, run_search


TINY = SearchConfig(space="nb201", relaxation="darts", optimization="single-level", width=2, depth=1, image_size=8,
                    batch_size=8, epochs=2, steps_per_epoch=2, checkpoint_every=2, log_every=1, progress=False,
                    conv_impl="xla")  # xla convolutions compile ~3x faster than the CPU default


def records(workdir, kind=None):
    out = [json.loads(line) for line in (Path(workdir) / "metrics.jsonl").read_text().splitlines()]
    out = [{k: v for k, v in r.items() if k != "time"} for r in out]
    return [r for r in out if kind is None or r["kind"] == kind]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ref")
    return run_search(TINY.replace(workdir=str(workdir)))


@pytest.mark.slow
def test_run_writes_everything(reference):
    w = reference.workdir
    for name in ("config.json", "metrics.jsonl", "genotypes.jsonl", "genotype.json", "arch.npz"):
        assert (w / name).exists(), name
    g = json.loads((w / "genotype.json").read_text())
    assert g["space"] == "nb201" and g["arch"] == reference.arch_string
    assert g["genotype"]["ops"] == list(reference.genotype.ops)
    epochs = records(w, "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1]
    assert all("genotype" in r and np.isfinite(r["loss"]) for r in epochs)
    genotypes = [json.loads(line) for line in (w / "genotypes.jsonl").read_text().splitlines()]
    assert [r["step"] for r in genotypes] == [0, 2, 4]  # the start, then after every epoch
    np.testing.assert_allclose(genotypes[-1]["arch_params"]["cell"], reference.arch["cell"], atol=1e-5)
    assert len(records(w, "step")) == 4 and len(records(w, "final")) == 1
    np.testing.assert_array_equal(load_arrays(w / "arch.npz")["cell"], reference.arch["cell"])
    assert sorted(int(p.name) for p in (w / "checkpoints").iterdir() if p.name.isdigit()) == [2, 4]


@pytest.mark.slow
def test_jaxnas_plot_draws_a_finished_run(reference, capsys, tmp_path):
    assert main(["plot", str(reference.workdir), "--out", str(tmp_path / "plots")]) == 0
    written = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in written) == ["arch_trajectories.png", "arch_weights.png", "cell.png",
                                                     "curves.png"]
    for p in written:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and Path(p).stat().st_size > 5000


@pytest.mark.slow
def test_same_seed_same_genotype(reference, tmp_path):
    again = run_search(TINY.replace(workdir=str(tmp_path / "again")))
    assert again.arch_string == reference.arch_string
    np.testing.assert_array_equal(again.arch["cell"], reference.arch["cell"])
    assert again.metrics == reference.metrics
    assert records(again.workdir) == records(reference.workdir)


@pytest.mark.slow
def test_rerun_of_finished_run_is_a_no_op(reference):
    before = records(reference.workdir)
    again = run_search(TINY.replace(workdir=str(reference.workdir)))
    assert again.resumed_from == 4
    assert again.arch_string == reference.arch_string and again.metrics == reference.metrics
    assert records(reference.workdir) == before


@pytest.mark.slow
def test_different_config_is_refused(reference):
    with pytest.raises(ValueError, match=r"different config \(seed: 0 -> 1\)"):
        run_search(TINY.replace(workdir=str(reference.workdir), seed=1))


@pytest.mark.slow
def test_warmup_leaves_arch_untouched(tmp_path):
    cfg = TINY.replace(workdir=str(tmp_path / "w"), epochs=1, warmup_epochs=1)
    result = run_search(cfg)
    from jaxnas.registry import get_space

    k_arch, _ = jax.random.split(jax.random.key(cfg.seed))
    np.testing.assert_array_equal(result.arch["cell"], np.asarray(get_space("nb201").init_arch(k_arch)["cell"]))


@pytest.mark.slow
def test_nan_stops_and_keeps_last_good_checkpoint(reference, tmp_path):
    workdir = tmp_path / "nan"
    with pytest.raises(DivergedError, match=r"loss is nan at step 2 .*last good checkpoint is step 2"):
        run_search(TINY.replace(workdir=str(workdir), inject_nan_at=2))
    ckpt = workdir / "checkpoints"
    assert sorted(p.name for p in ckpt.iterdir() if p.name.isdigit()) == ["2"]
    assert not (workdir / "genotype.json").exists()
    # the same run without the fault resumes from the good checkpoint and ends as an uninterrupted run
    resumed = run_search(TINY.replace(workdir=str(workdir)))
    assert resumed.resumed_from == 2
    np.testing.assert_array_equal(resumed.arch["cell"], reference.arch["cell"])
    assert records(workdir) == records(reference.workdir)


@pytest.mark.slow
def test_corrupted_checkpoint_falls_back_to_previous(reference, tmp_path):
    import shutil

    workdir = tmp_path / "corrupt"
    shutil.copytree(reference.workdir, workdir)
    (workdir / "genotype.json").unlink()
    for f in (workdir / "checkpoints" / "4" / "state").rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match=r"checkpoint .*4 is unreadable"):
        result = run_search(TINY.replace(workdir=str(workdir)))
    assert result.resumed_from == 2
    assert any(p.name.startswith("4-") for p in (workdir / "corrupted_checkpoints").iterdir())
    np.testing.assert_array_equal(result.arch["cell"], reference.arch["cell"])
    assert records(workdir) == records(reference.workdir)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"relaxation": "enas"}, "unknown relaxation 'enas'"),
        ({"optimization": "bilevel"}, "unknown optimization"),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"warmup_epochs": 5}, "warmup_epochs must be between 0 and epochs"),
        ({"temperature": "linear:1"}, "linear takes 2 number"),
        ({"batch_size": 6, "devices": 4}, "must divide evenly over 4 devices"),
    ],
)
def test_bad_config_values(changes, message):
    with pytest.raises(ValueError, match=message):
        TINY.replace(**changes)


def test_config_json_round_trip():
    assert SearchConfig.from_json(json.loads(json.dumps(TINY.to_json()))) == TINY


# -- checkpoint.py ------------------------------------------------------------------------------------------------


def _tree():
    return {"w": jnp.arange(6.0).reshape(2, 3), "n": None, "opt": (jnp.zeros(()), {"c": jnp.int32(3)}),
            "key": jax.random.key(7)}


def test_checkpoint_round_trip_with_typed_key(tmp_path):
    tree = _tree()
    with Checkpoints(tmp_path / "ck", keep=2) as ck:
        for step in (1, 2, 3):
            ck.save(step, tree, {"global_step": step})
        assert ck.steps() == [2, 3]
        found = ck.restore_latest(tree)
    assert found.step == 3 and found.meta["global_step"] == 3
    np.testing.assert_array_equal(found.state["w"], np.asarray(tree["w"]))
    assert found.state["n"] is None
    np.testing.assert_array_equal(jax.random.key_data(found.state["key"]), jax.random.key_data(tree["key"]))
    np.testing.assert_array_equal(jax.random.normal(found.state["key"], (3,)), jax.random.normal(tree["key"], (3,)))


def test_checkpoint_refuses_nan_and_mismatch(tmp_path):
    tree = _tree()
    with Checkpoints(tmp_path / "ck") as ck:
        with pytest.raises(ValueError, match="NaN or infinite"):
            ck.save(1, {**tree, "w": jnp.full((2, 3), jnp.nan)})
        assert ck.steps() == []
    arrays, described = flatten_state(tree)
    with pytest.raises(CheckpointError, match="shape"):
        unflatten_state({**tree, "w": jnp.zeros((3, 3))}, arrays, described)


def test_all_checkpoints_unreadable_means_fresh_start(tmp_path):
    tree = _tree()
    with Checkpoints(tmp_path / "ck") as ck:
        ck.save(5, tree)
    (tmp_path / "ck" / "5" / "meta" / "metadata").write_text("{not json")
    with Checkpoints(tmp_path / "ck", report=lambda m: None) as ck, warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert ck.restore_latest(tree) is None
    assert any("unreadable" in str(x.message) for x in w)


@pytest.mark.slow
def test_spos_trains_weights_then_picks_best_candidate(tmp_path):
    cfg = TINY.replace(workdir=str(tmp_path / "spos"), relaxation="spos", epochs=1, steps_per_epoch=2, spos_candidates=3)
    result = run_search(cfg)
    g = json.loads((tmp_path / "spos" / "genotype.json").read_text())
    scores = g["spos_candidates"]
    assert 1 <= len(scores) <= 3 and g["optimization"] == "weights-only"
    best = max(scores, key=lambda s: (s["accuracy"], -s["loss"]))
    assert result.arch_string == best["arch"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["pcdarts", "drnas-progressive"])  # the others: tests/test_registry.py
def test_each_method_runs_from_the_cli_and_resumes_bit_identical(method, tmp_path, capsys):
    """``jaxnas search --method M`` on the tiny config; a run stopped after its first checkpoint (a NaN injected at
    step 3) and started again ends where the uninterrupted run does. PC-DARTS changes the supernet, so it runs on
    NB201 itself; so does DrNAS's progressive schedule (pruned to 3 ops and widened to 1/2 of the channels after
    epoch 0: the run is stopped in its second stage and resumes there)."""
    def argv(workdir, *extra):
        width = "4" if method in ("pcdarts", "drnas-progressive") else "2"  # 1/4 of the channels through each op
        return ["search", "--method", method, "--width", width, "--depth", "1", "--image-size", "8", "--batch-size", "8",
                "--epochs", "2", "--steps-per-epoch", "2", "--checkpoint-every", "2", "--log-every", "1",
                "--conv-impl", "xla", "--no-progress", "--workdir", str(workdir), *extra]

    stop_then_resume_in_process(main, argv, tmp_path / "ref", tmp_path / "run")
    capsys.readouterr()
    assert records(tmp_path / "run") == records(tmp_path / "ref")
    ref = json.loads((tmp_path / "ref" / "genotype.json").read_text())
    assert json.loads((tmp_path / "run" / "genotype.json").read_text()) == ref
    np.testing.assert_array_equal(load_arrays(tmp_path / "run" / "arch.npz")["cell"],
                                  load_arrays(tmp_path / "ref" / "arch.npz")["cell"])
    steps = records(tmp_path / "ref", "step")
    if method == "fairdarts":  # the zero-one loss is in the arch objective, the weights are sigmoids
        assert ref["relaxation"] == "sigmoid" and all(-2.5 <= r["penalty"] <= 0 for r in steps)
    if method == "drnas":
        assert ref["relaxation"] == "dirichlet"
    if method == "drnas-progressive":
        change = records(tmp_path / "ref", "progressive")
        assert [(r["epoch"], r["ops_per_edge"], r["partial_channels"]) for r in change] == [(0, 3, 2)]
        assert records(tmp_path / "run", "progressive") == change
        arch = load_arrays(tmp_path / "ref" / "arch.npz")["cell"]
        assert ((arch <= -5e3).sum(-1) == 2).all()  # 2 of 5 ops pruned on every edge
    if method == "pcdarts":  # the edge logits are trained and recorded with the op logits
        first, last = (json.loads(line)["arch_params"]["cell_edges"]
                       for line in (tmp_path / "ref" / "genotypes.jsonl").read_text().splitlines()[::2])
        assert len(last) == 6 and first != last
