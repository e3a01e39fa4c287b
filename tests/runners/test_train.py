"""Training a derived network from scratch: NB201 and DARTS (auxiliary head, drop-path), result.json, resumption,
NaN stop, genotype sources."""

import json
import os
import tempfile
from pathlib import Path

import pytest

from jaxnas.nn.costs import image_spec, profile
from jaxnas.nn.networks import NetworkCIFAR
from jaxnas.runners.loop import DivergedError
from jaxnas.runners.train import TrainConfig, load_genotype, train_and_evaluate


ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def tiny_nb201(workdir, **changes):
    space, g = load_genotype(ARCH)
    base = dict(genotype=space.to_json(g), width=2, depth=1, image_size=8, batch_size=8, epochs=1,
                steps_per_epoch=2, checkpoint_every=1, eval_examples=40, eval_batch_size=16, progress=False,
                conv_impl="xla", workdir=str(workdir))
    return TrainConfig(**{**base, **changes})


def test_train_nb201_writes_result_and_resumes(tmp_path):
    cfg = tiny_nb201(tmp_path / "t")
    result = train_and_evaluate(cfg)
    saved = json.loads((tmp_path / "t" / "result.json").read_text())
    assert 0.0 <= saved["test_accuracy"] <= 1.0 and saved["test_examples"] == 40
    assert saved["arch"] == ARCH and saved["steps"] == 2
    assert saved["test_accuracy"] == result.test_accuracy
    again = train_and_evaluate(cfg)  # finished run: resumes at the end, same result
    assert again.resumed_from == 2 and again.test_accuracy == result.test_accuracy
    with pytest.raises(ValueError, match="different config"):
        train_and_evaluate(cfg.__class__(**{**cfg.to_json(), "lr": 0.1}))


def test_train_nan_stops_and_keeps_checkpoint(tmp_path):
    workdir = tmp_path / "nan"
    with pytest.raises(DivergedError, match=r"loss is nan at step 1 .*last good checkpoint is step 1"):
        train_and_evaluate(tiny_nb201(workdir, inject_nan_at=1))
    assert (workdir / "checkpoints" / "1").is_dir() and not (workdir / "result.json").exists()
    assert train_and_evaluate(tiny_nb201(workdir)).resumed_from == 1


@pytest.mark.slow
def test_train_darts_with_auxiliary_and_drop_path(tmp_path):
    space, g = load_genotype("DARTS_V2")
    cfg = TrainConfig(genotype=space.to_json(g), width=2, depth=3, image_size=32, batch_size=4, epochs=2,
                      steps_per_epoch=1, checkpoint_every=1, eval_examples=8, eval_batch_size=8, progress=False,
                      conv_impl="xla", log_every=1, workdir=str(tmp_path / "d"))
    result = train_and_evaluate(cfg)
    records = [json.loads(x) for x in (tmp_path / "d" / "metrics.jsonl").read_text().splitlines()]
    assert {"kind": "final"}.items() <= records[-1].items()
    # drop-path grows linearly from 0 to drop_path=0.2 over the epochs (0, then 0.1 at epoch 1 of 2)
    assert [r["drop_prob"] for r in records if r["kind"] == "step"] == pytest.approx([0.0, 0.1])
    # the trained network carries the auxiliary head: its parameters are counted with it
    with_aux = profile(NetworkCIFAR(g, C=2, layers=3, num_classes=10, auxiliary=True), image_spec(1, 32, 1),
                       train=False)[0]
    without = profile(NetworkCIFAR(g, C=2, layers=3, num_classes=10), image_spec(1, 32, 1), train=False)[0]
    assert result.params == with_aux > without


def test_load_genotype_sources(tmp_path):
    search_out = tmp_path / "genotype.json"
    space, g = load_genotype(ARCH)
    search_out.write_text(json.dumps({"space": "nb201", "genotype": space.to_json(g), "arch": ARCH}))
    assert load_genotype(str(search_out))[1] == g
    assert load_genotype(json.dumps(space.to_json(g)))[1] == g
    assert load_genotype("DARTS_V2")[0].name == "darts"
    with pytest.raises(ValueError, match="space"):
        load_genotype({"ops": ["none"] * 6})
