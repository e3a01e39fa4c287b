import json
import math

import jax
import numpy as np
import pytest

from jaxnas.nn import recurrent
from jaxnas.data import ptb
from jaxnas.spaces.rnn import DartsRnnSpace
from jaxnas.runners import lm as L
from jaxnas.runners.forecast import make_cell
from jaxnas.nn.sequence import LanguageModel
from tests.helpers.cells import MixedCell, TanhCell, mixed_arch


def toy_corpus(tmp_path):
    """A cyclic text: every word determines the next, so a small model learns it quickly."""
    (tmp_path / "train.txt").write_text("a b c d e f\n" * 50)
    (tmp_path / "valid.txt").write_text("a b c d e f\n" * 8)
    (tmp_path / "test.txt").write_text("c d e f\na b c d e f\n" * 4)
    return str(tmp_path)


def param_names(model, tokens):
    shapes = jax.eval_shape(lambda k: model.init(k, tokens, None, train=False), jax.random.key(0))
    return set(shapes["params"])


def test_language_model_shapes_and_weight_tying():
    tokens = np.zeros((2, 5), np.int32)
    assert param_names(LanguageModel(TanhCell(4), 11, 4, tie_weights=True), tokens) == {"embed", "cell",
                                                                                       "decoder_bias"}
    assert param_names(LanguageModel(TanhCell(4), 11, 6, tie_weights=True), tokens) == {"embed", "cell", "proj",
                                                                                       "decoder_bias"}
    assert param_names(LanguageModel(TanhCell(4), 11, 6), tokens) == {"embed", "cell", "decoder"}
    with pytest.raises(ValueError, match="token ids"):
        LanguageModel(TanhCell(4), 11, 4).init(jax.random.key(0), np.zeros(5, np.int32))


def test_perplexity_is_exp_mean_nll_with_the_state_carried_across_windows():
    model = LanguageModel(TanhCell(4), 7, 4, tie_weights=True)
    stream = np.random.default_rng(0).integers(0, 7, size=(2, 13)).astype(np.int32)
    v = jax.jit(lambda k: model.init(k, stream[:, :5], None, train=False))(jax.random.key(1))
    # by hand: the whole stream in one call, log-softmax in numpy, NLL of every next token
    logits = np.asarray(jax.jit(lambda v, x: model.apply(v, x, None, train=False))(v, stream[:, :-1]), np.float64)
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    targets = stream[:, 1:]
    nll = -np.mean(np.take_along_axis(logp, targets[..., None], -1))
    got = L.evaluate_lm(model, v, stream, bptt=5)  # windows of 5, 5 and 2 (padded, masked) tokens
    assert got["tokens"] == 24
    assert got["nll"] == pytest.approx(nll, rel=1e-5)
    assert got["ppl"] == pytest.approx(math.exp(got["nll"]), rel=1e-12)
    assert L.evaluate_lm(model, v, stream, bptt=5, max_windows=1)["tokens"] == 10


def test_training_decreases_the_loss_on_a_toy_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = L.LMConfig(data_dir=toy_corpus(tmp_path), cell="lstm", hidden=8, embed_dim=8, tie_weights=False, steps=60,
                     batch_size=4, bptt=8, lr=3e-2, grad_clip=1.0, eval_batch_size=2, eval_every=30)
    r = L.run_lm(cfg)
    first, last = r["train_loss"]
    assert r["vocab"] == 8 and not r["search"]  # a..f, <eos>, <unk>
    assert last < 0.5 * first
    assert r["test"]["ppl"] < 2.5 and r["test"]["tokens"] == 2 * 23  # 48 test tokens -> (2, 24): 23 targets a row
    assert r["best_step"] in (30, 60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.txt", "train.txt", "valid.txt"]  # no workdir
    json.dumps(r)


def small_darts_cell(hidden):
    return recurrent.DartsRnnSearchCell(hidden=hidden, steps=2)


def small_darts_arch(key):
    return DartsRnnSpace(steps=2).init_arch(key)


def test_search_with_the_darts_cell_updates_the_architecture(tmp_path):
    cfg = L.LMConfig(data_dir=toy_corpus(tmp_path), cell=small_darts_cell, hidden=4, embed_dim=4, steps=6,
                     batch_size=2, bptt=6, arch=small_darts_arch, optimization="bilevel-1st",
                     workdir=str(tmp_path / "run"), log_every=2, eval_batch_size=2)
    r = L.run_lm(cfg)
    start = np.asarray(small_darts_arch(jax.random.split(jax.random.key(0))[1])["rnn"])
    assert r["search"] and np.shape(r["arch"]["rnn"]) == (3, 5)
    assert not np.allclose(np.asarray(r["arch"]["rnn"]), start)
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [rec["kind"] for rec in lines] == ["step"] * 3 + ["final"]
    assert "val_loss" in lines[0] and "accuracy" not in lines[0]
    assert json.loads((tmp_path / "run" / "result.json").read_text())["test"] == pytest.approx(r["test"])


def test_single_level_search_with_a_hard_relaxation(tmp_path):
    cfg = L.LMConfig(data_dir=toy_corpus(tmp_path), cell=MixedCell, hidden=4, embed_dim=4, steps=3, batch_size=2,
                     bptt=6, arch=mixed_arch, optimization="single-level", relaxation="gdas", eval_batch_size=2)
    r = L.run_lm(cfg)
    start = np.asarray(mixed_arch(jax.random.split(jax.random.key(0))[1])["cell"])
    assert not np.allclose(np.asarray(r["arch"]["cell"]), start)  # straight-through gradients reach the arch
    assert math.isfinite(r["test"]["ppl"])


def test_shipped_corpus_smoke_and_errors(tmp_path):
    r = L.run_lm(L.LMConfig(cell=TanhCell, hidden=4, embed_dim=4, steps=2, batch_size=2, bptt=4, eval_windows=2,
                            eval_batch_size=2))
    assert r["vocab"] == 7596 and "train = valid.txt" in r["corpus"] and r["test"]["tokens"] == 16
    assert r["params"] == 7596 * 4 + (4 * 4 + 4 + 4 * 4) + 7596  # embedding (tied), cell, decoder bias
    with pytest.raises(ValueError, match="eval_windows"):
        L.LMConfig(eval_windows=0)
    with pytest.raises(ValueError, match="search cell: give arch"):
        L.LMConfig(cell="darts")
    assert isinstance(make_cell("darts", 4), recurrent.DartsRnnSearchCell)
    with pytest.raises(ValueError, match="no full window"):
        L.run_lm(L.LMConfig(data_dir=toy_corpus(tmp_path), cell=TanhCell, hidden=4, embed_dim=4, batch_size=2,
                            bptt=500, steps=1))
    assert ptb.load_corpus(toy_corpus(tmp_path)).vocab.words[:2] == ("a", "b")
