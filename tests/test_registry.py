"""The registry: every built-in space resolves, and a space registered from this file alone runs through describe,
a search and a retrain (docs/extending.md walks through the same toy space)."""

import dataclasses
import json

import flax.linen as nn
import jax
import numpy as np
import pytest

from tests.helpers.resume import stop_then_resume_in_process
from jaxnas import registry
from jaxnas.cli.describe import describe
from jaxnas.cli.main import main
from jaxnas.nn.ops import make_op
from jaxnas.plot import plot_arch_weights, plot_genotype
from jaxnas.spaces.graph import CellGraph, GraphEdge, GraphNode
from jaxnas.runners import search as search_runner
from jaxnas.runners.search import SearchConfig, run_search
from jaxnas.runners.train import TrainConfig, load_genotype, train_and_evaluate

TOY_OPS = ("skip_connect", "nor_conv_3x3", "avg_pool_3x3")


@dataclasses.dataclass(frozen=True)
class ToyGenotype:
    op: str


@dataclasses.dataclass(frozen=True)
class ToySpace:
    """One edge after a stem: which op it carries."""

    name: str = "toy-edge"
    primitives: tuple[str, ...] = TOY_OPS

    def init_arch(self, key):
        return {"edge": 1e-3 * jax.random.normal(key, (1, len(self.primitives)))}

    def derive(self, arch, scores="softmax") -> ToyGenotype:  # scores: the strongest op is the same either way
        return ToyGenotype(self.primitives[int(np.argmax(np.asarray(arch["edge"])[0]))])

    def discrete_weights(self, weights):  # optional: the derived edge as weights (DARTS-PRIME's terms use it)
        return {"edge": jax.nn.one_hot(jax.numpy.argmax(weights["edge"], -1), len(self.primitives))}

    def to_json(self, g: ToyGenotype) -> dict:
        return {"space": self.name, "op": g.op}

    def from_json(self, data: dict) -> ToyGenotype:
        if data.get("op") not in self.primitives:
            raise ValueError(f"toy genotype: op must be one of {self.primitives}, got {data.get('op')!r}")
        return ToyGenotype(data["op"])

    def format(self, g: ToyGenotype) -> str:
        return g.op

    def parse(self, text: str) -> ToyGenotype:
        return self.from_json({"op": text})

    def cell_graphs(self, g: ToyGenotype):
        nodes = [GraphNode("in", "stem", "input"), GraphNode("out", "out", "output")]
        return (CellGraph("edge", nodes, [GraphEdge("in", "out", g.op)]),)

    def arch_axes(self):
        return {"edge": (("stem\u2192out",), self.primitives)}


class ToySupernet(nn.Module):
    width: int
    num_classes: int

    @nn.compact
    def __call__(self, x, weights, train: bool = True, hard: bool = False):
        x = nn.Conv(self.width, (3, 3))(x)
        w = weights["edge"][0]
        x = sum(w[i] * make_op(op, self.width, affine=False)(x, train) for i, op in enumerate(TOY_OPS))
        return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


class ToyNetwork(nn.Module):
    genotype: ToyGenotype
    width: int
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.Conv(self.width, (3, 3))(x)
        x = make_op(self.genotype.op, self.width)(x, train)
        return nn.Dense(self.num_classes)(x.mean(axis=(1, 2)))


@pytest.fixture
def toy_space():
    entry = registry.register_space(registry.SpaceEntry(
        name="toy-edge", make_space=ToySpace,
        make_supernet=lambda space, width, depth, classes, impl: ToySupernet(width, classes),
        make_network=lambda g, width, depth, classes, aux, impl: ToyNetwork(g, width, classes),
        quick_supernet=registry.Sizes(4, 1), quick_network=registry.Sizes(4, 1),
        paper_supernet=registry.Sizes(4, 1), paper_network=registry.Sizes(4, 1),
    ))
    yield entry
    registry.unregister_space("toy-edge")


def test_builtin_spaces_resolve():
    assert set(registry.space_names()) >= {"nb201", "darts", "darts-rnn", "grow-conv"}
    for name in registry.space_names():
        assert registry.get_space(name).name == name
    with pytest.raises(ValueError, match="unknown search space 'nasnet'; known: darts, darts-rnn"):
        registry.get_space("nasnet")


def test_a_name_is_registered_once(toy_space):
    with pytest.raises(ValueError, match="registered already"):
        registry.register_space(toy_space)
    with pytest.raises(ValueError, match="unknown task"):
        registry.SpaceEntry(name="x", make_space=ToySpace, task="video")


def test_toy_space_describe_search_and_retrain(toy_space, tmp_path, capsys):
    d = describe("toy-edge", genotype="nor_conv_3x3", dataset="fashion_mnist")
    # stem 3x3 conv 1->4 (36 + 4), ReLUConvBN 3x3 4->4 (144, BN 8), dense 4->10 (40 + 10)
    assert (d.model, d.params) == ("ToyNetwork", 40 + 144 + 8 + 50)
    assert main(["describe", "--space", "toy-edge", "--supernet", "--dataset", "fashion_mnist"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "ToySupernet"

    search = run_search(SearchConfig(space="toy-edge", epochs=1, steps_per_epoch=3, batch_size=8, image_size=8,
                                     workdir=str(tmp_path / "search"), progress=False))
    assert search.genotype.op in TOY_OPS and search.steps == 3
    saved = json.loads((tmp_path / "search" / "genotype.json").read_text())
    assert saved["space"] == "toy-edge" and saved["genotype"] == {"space": "toy-edge", "op": search.genotype.op}

    space, genotype = load_genotype(str(tmp_path / "search" / "genotype.json"))
    assert (space.name, genotype) == ("toy-edge", search.genotype)
    result = train_and_evaluate(TrainConfig(genotype=saved["genotype"], epochs=1, steps_per_epoch=3, batch_size=8,
                                            image_size=8, eval_examples=16, workdir=str(tmp_path / "train"),
                                            progress=False))
    assert result.steps == 3 and result.test_examples == 16 and 0.0 <= result.test_accuracy <= 1.0
    # the retrained network is the one describe counts for that genotype
    assert result.params == describe("toy-edge", genotype=search.genotype.op, dataset="fashion_mnist").params


def test_a_registered_space_gets_pictures(toy_space, tmp_path, capsys):
    space = registry.get_space("toy-edge")
    (ax,) = plot_genotype(space, space.parse("avg_pool_3x3")).axes
    assert [t.get_text() for t in ax.texts if t.get_gid() == "edge-label:in->out"] == ["avg_pool_3x3"]
    heat = plot_arch_weights(space, {"edge": np.array([[0.0, 1.0, 2.0]])})
    assert [t.get_text() for t in heat.axes[0].get_yticklabels()] == ["stem\u2192out"]
    assert main(["plot", "--space", "toy-edge", "--genotype", "skip_connect", "--out", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").stat().st_size > 1000


def _records(workdir, kind):
    return [{k: v for k, v in json.loads(line).items() if k != "time"}
            for line in (workdir / "metrics.jsonl").read_text().splitlines() if json.loads(line)["kind"] == kind]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fairdarts", "drnas", "sdarts-rs", "sdarts-adv", "msdarts", "dartsprime",
                                    "asap", "clipped"])
def test_each_method_runs_from_the_cli_and_resumes_bit_identical(method, toy_space, tmp_path, capsys):
    """``jaxnas search --space toy-edge --method M`` (a one-edge space: the method's step compiles in seconds); a run
    stopped after its first checkpoint (a NaN injected at step 3) and started again ends where the uninterrupted run
    does. tests/runners/test_search.py runs PC-DARTS, which changes the supernet, on NB201."""
    def argv(workdir, *extra):
        return ["search", "--space", "toy-edge", "--method", method, "--image-size", "8", "--batch-size", "8",
                "--epochs", "2", "--steps-per-epoch", "2", "--checkpoint-every", "2", "--log-every", "1",
                "--no-progress", "--workdir", str(workdir), *extra]

    stop_then_resume_in_process(main, argv, tmp_path / "ref", tmp_path / "run")
    capsys.readouterr()
    for kind in ("step", "epoch", "final"):
        assert _records(tmp_path / "run", kind) == _records(tmp_path / "ref", kind)
    ref = json.loads((tmp_path / "ref" / "genotype.json").read_text())
    assert json.loads((tmp_path / "run" / "genotype.json").read_text()) == ref
    steps = _records(tmp_path / "ref", "step")
    if method == "fairdarts":  # the zero-one loss is in the arch objective, the weights are sigmoids
        assert ref["relaxation"] == "sigmoid" and all(-2.5 <= r["penalty"] <= 0 for r in steps)
    if method == "drnas":
        assert ref["relaxation"] == "dirichlet"
    if method == "dartsprime":  # the dynamic schedule skips the arch step while the gradient is above threshold
        assert all(r["arch_update"] in (0.0, 1.0) and r["weight_grad_sq"] > 0 for r in steps)
    if method == "clipped":  # clipped weights stay in [0, 1]
        arch = np.load(tmp_path / "ref" / "arch.npz")["edge"]
        assert arch.min() >= 0 and arch.max() <= 1


@pytest.mark.slow
def test_rdarts_tracks_the_eigenvalue_stops_early_and_returns_the_earlier_arch(toy_space, tmp_path, monkeypatch):
    """RobustDARTS's run mechanics: the eigenvalue is recorded after every epoch; when the rule fires (here a rule
    that fires after epoch 1 and goes back to epoch 0: the toy's eigenvalues hover around 0, and the real rule is
    tested on hand-made sequences in tests/search/test_curvature.py) the search stops, returns epoch 0's
    architecture, and a rerun of the stopped run changes nothing."""
    calls = []

    def rule(eigenvalues, window, delta, factor, start_epoch):
        calls.append((list(eigenvalues), window, delta, factor, start_epoch))
        return 0 if len(eigenvalues) >= 2 else None

    monkeypatch.setattr(search_runner, "early_stop_epoch", rule)
    cfg = SearchConfig(space="toy-edge", epochs=4, steps_per_epoch=2, batch_size=8, image_size=8, log_every=1,
                       checkpoint_every=2, workdir=str(tmp_path / "rd"), progress=False, relaxation="darts",
                       track_eigenvalue=True, early_stop=True, eigen_iterations=3)
    result = run_search(cfg)
    assert [c[1:] for c in calls] == [(5, 4, 1.3, 10)] * 2  # the authors' defaults reach the rule
    assert result.steps == 4  # 2 of 4 epochs (2 steps each)
    epochs = _records(result.workdir, "epoch")
    assert [r["epoch"] for r in epochs] == [0, 1] and all(np.isfinite(r["eigenvalue"]) for r in epochs)
    (stop,) = _records(result.workdir, "early_stop")
    assert stop == {"kind": "early_stop", "epoch": 1, "step": 4, "returned_epoch": 0}
    saved = json.loads((result.workdir / "genotype.json").read_text())
    assert saved["early_stop"] == {"returned_epoch": 0, "steps": 4}
    assert saved["eigenvalues"] == [r["eigenvalue"] for r in epochs]
    genotypes = [json.loads(line) for line in (result.workdir / "genotypes.jsonl").read_text().splitlines()]
    epoch0 = next(r for r in genotypes if r["epoch"] == 0)
    assert saved["genotype"] == epoch0["genotype"]
    np.testing.assert_allclose(result.arch["edge"], epoch0["arch_params"]["edge"], atol=1e-5)
    again = run_search(cfg)
    assert again.resumed_from == 4 and again.steps == 4 and again.arch_string == result.arch_string
    assert _records(result.workdir, "early_stop") == [stop]


@pytest.mark.slow
def test_dynamic_schedule_follows_its_threshold_rule_and_epochs_average_what_ran(toy_space, tmp_path):
    """DARTS-PRIME's schedule, replayed from the step records: an arch step exactly when the previous step's
    squared weight-gradient norm lies in (0, threshold), the threshold doubling after a plain step and quartering
    after an arch step (multiplier 2, frequency 2); both kinds occur, and an epoch's val_loss is the mean over the
    steps that had one."""
    cfg = SearchConfig(space="toy-edge", epochs=4, steps_per_epoch=6, batch_size=8, image_size=8, log_every=1,
                       checkpoint_every=6, workdir=str(tmp_path / "dp"), progress=False, arch_schedule="dynamic",
                       schedule_multiplier=2.0, schedule_frequency=2.0, schedule_threshold=0.05,
                       proximity_weight=1e-3)
    run_search(cfg)
    steps = _records(tmp_path / "dp", "step")
    threshold, previous = 0.05, -1.0
    for r in steps:
        expect = 0.0 < previous < threshold
        assert r["arch_update"] == float(expect), r
        assert ("val_loss" in r) == expect
        threshold *= 0.25 if expect else 2.0
        previous = r["weight_grad_sq"]
    assert 0 < sum(r["arch_update"] for r in steps) < len(steps)
    for e in _records(tmp_path / "dp", "epoch"):
        mine = [r for r in steps if r["epoch"] == e["epoch"]]
        vals = [r["val_loss"] for r in mine if "val_loss" in r]
        assert e["arch_update"] == pytest.approx(np.mean([r["arch_update"] for r in mine]))
        assert (e.get("val_loss") is None) == (not vals)
        if vals:
            assert e["val_loss"] == pytest.approx(np.mean(vals))


@pytest.mark.slow
def test_asap_prunes_during_the_search_and_pruned_ops_stay_out(toy_space, tmp_path):
    cfg = SearchConfig(space="toy-edge", epochs=3, steps_per_epoch=4, batch_size=8, image_size=8, log_every=1,
                       checkpoint_every=4, workdir=str(tmp_path / "asap"), progress=False, relaxation="darts",
                       temperature="constant:1", prune_fraction=0.9, optim=search_runner.OptimConfig(a_lr=0.3))
    result = run_search(cfg)
    prunes = [r for r in _records(tmp_path / "asap", "prune")]
    assert prunes and prunes[0]["pruned"] >= 1
    records = [json.loads(line) for line in (tmp_path / "asap" / "genotypes.jsonl").read_text().splitlines()]
    after = [r for r in records if r["epoch"] is not None and r["epoch"] > prunes[0]["epoch"]]
    pruned = np.asarray(after[0]["arch_params"]["edge"]) <= search_runner.PRUNED / 2  # written before its prune
    assert pruned.sum() == prunes[0]["pruned"]
    for r in after:  # every later record keeps them pruned
        assert (np.asarray(r["arch_params"]["edge"])[pruned] <= search_runner.PRUNED / 2).all()
    assert result.genotype.op not in [TOY_OPS[i] for i in np.flatnonzero(pruned[0])]


@pytest.mark.slow
def test_pdarts_stages_prune_ops_restart_the_supernet_and_resume(toy_space, tmp_path, capsys):
    """``--method pdarts`` with the toy's sizes (2 stages keeping 2, then 1 of its 3 ops): stage 1 starts from a
    fresh draw of the architecture with the op stage 0 dropped at -1e4 (the authors rebuild each stage; nothing
    but the op set carries over), the final cell uses the op stage 1 kept, and a run stopped in stage 0 and started
    again ends as the uninterrupted one."""
    def argv(workdir, *extra):
        return ["search", "--space", "toy-edge", "--method", "pdarts", "--stage-depths", "1,1", "--stage-ops", "2,1",
                "--stage-skip-dropout", "0.1,0.4", "--max-skips", "none", "--image-size", "8", "--batch-size", "8",
                "--epochs", "2", "--steps-per-epoch", "2", "--checkpoint-every", "2", "--log-every", "1",
                "--no-progress", "--workdir", str(workdir), *extra]

    stop_then_resume_in_process(main, argv, tmp_path / "ref", tmp_path / "run")
    capsys.readouterr()
    for stage in ("stage0", "stage1"):
        for kind in ("step", "epoch", "final"):
            assert _records(tmp_path / "run" / stage, kind) == _records(tmp_path / "ref" / stage, kind)
    ref = json.loads((tmp_path / "ref" / "genotype.json").read_text())
    assert json.loads((tmp_path / "run" / "genotype.json").read_text()) == ref
    stages = json.loads((tmp_path / "ref" / "stages.json").read_text())
    kept = stages[0]["kept_after"]["edge"][0]
    assert stages[0]["keep_ops"] is None and len(kept) == 2 and stages[1]["keep_ops"]["edge"][0] == kept
    first = json.loads((tmp_path / "ref" / "stage1" / "genotypes.jsonl").read_text().splitlines()[0])
    start = np.asarray(first["arch_params"]["edge"][0])
    dropped = [i for i, op in enumerate(TOY_OPS) if op not in kept]
    assert (start[dropped] == search_runner.PRUNED).all()
    lines = (tmp_path / "ref" / "stage0" / "genotypes.jsonl").read_text().splitlines()
    s0_start, s0_end = (np.asarray(json.loads(lines[i])["arch_params"]["edge"][0]) for i in (0, -1))
    live = [TOY_OPS.index(o) for o in kept]
    assert not np.allclose(s0_end, s0_start)  # stage 0 moved its parameters...
    np.testing.assert_array_equal(start[live], s0_start[live])  # ...and stage 1 starts from the same-seed draw
    assert ref["genotype"]["op"] in stages[1]["kept_after"]["edge"][0] and ref["method"] == "pdarts"
    assert main(argv(tmp_path / "ref")[:-2] + ["--stage-ops", "1,1", "--workdir", str(tmp_path / "ref")]) == 2
    assert "holds a pdarts run with a different config (stage_ops: [2, 1] -> [1, 1])" in capsys.readouterr().err


@pytest.mark.slow
def test_darts_ada_goes_back_with_more_weight_decay_until_the_maximum(toy_space, tmp_path, monkeypatch, capsys):
    """``--method rdarts-ada`` with a rule that fires whenever two eigenvalues are known (returning epoch 0): every
    leg but the last stops after epoch 1 and the next one starts from the state after epoch 0 with 3x the weight
    decay, until 243e-4; the last leg runs to the end without the early stop. The state it starts from is epoch
    0's, the learning rate goes on along the same schedule, and a run stopped in leg 1 ends as the uninterrupted
    one."""
    def rule(eigenvalues, window, delta, factor, start_epoch):
        return 0 if len(eigenvalues) == 2 else None

    monkeypatch.setattr(search_runner, "early_stop_epoch", rule)

    def argv(workdir, *extra):
        return ["search", "--space", "toy-edge", "--method", "rdarts-ada", "--image-size", "8", "--batch-size", "8",
                "--epochs", "4", "--steps-per-epoch", "2", "--checkpoint-every", "2", "--log-every", "1",
                "--no-progress", "--workdir", str(workdir), *extra]

    stop_then_resume_in_process(main, argv, tmp_path / "ref", tmp_path / "run")
    capsys.readouterr()
    legs = json.loads((tmp_path / "ref" / "legs.json").read_text())
    assert [leg["weight_decay"] for leg in legs] == pytest.approx([3e-4, 9e-4, 27e-4, 81e-4, 243e-4])
    assert [bool(leg["early_stop"]) for leg in legs] == [True] * 4 + [False]
    assert all(leg["start_from"].endswith("iter1/epoch_states/0") for leg in legs[1:])
    for k in range(1, 6):
        leg = f"iter{k}"
        for kind in ("step", "epoch"):
            assert _records(tmp_path / "run" / leg, kind) == _records(tmp_path / "ref" / leg, kind)
    assert json.loads((tmp_path / "run" / "genotype.json").read_text()) == \
        json.loads((tmp_path / "ref" / "genotype.json").read_text())
    first, second, last = (tmp_path / "ref" / f"iter{k}" for k in (1, 2, 5))
    assert [r["epoch"] for r in _records(last, "epoch")] == [1, 2, 3]
    start = json.loads((second / "genotypes.jsonl").read_text().splitlines()[0])
    epoch0 = next(json.loads(line) for line in (first / "genotypes.jsonl").read_text().splitlines()
                  if json.loads(line)["epoch"] == 0)
    assert start["step"] == 2 and start["arch_params"] == epoch0["arch_params"]
    lr = {r["step"]: r["lr"] for r in _records(first, "step")}
    assert [r["lr"] for r in _records(second, "step") if r["step"] in lr] == [lr[3], lr[4]]
