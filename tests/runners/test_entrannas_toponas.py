"""EnTranNAS, EnTranNAS-DST and TopoNAS from the command line: search, stop and resume bit-identical, derive,
describe (with cell width/depth), train the derived network, plot its cells."""

import json

import numpy as np
import pytest

from tests.helpers.resume import stop_then_resume_in_process
from jaxnas.cli.main import main
from jaxnas.runners.search import SearchConfig


def _records(workdir, kind):
    return [{k: v for k, v in json.loads(line).items() if k != "time"}
            for line in (workdir / "metrics.jsonl").read_text().splitlines() if json.loads(line)["kind"] == kind]


# DARTS: single-level (one program to compile instead of two; bi-level runs in the bench and on NB201); DST with a
# large arch learning rate, so that its derived cell (then the network trained) is sparse after four steps
CASES = {  # method -> (space, extra flags)
    "entrannas-dst": ("darts", ["--width", "4", "--depth", "3", "--optimization", "single-level", "--a-lr", "0.3"]),
    "toponas": ("darts", ["--width", "4", "--depth", "3", "--relaxation", "gdas", "--topology-sizes", "1,2,3",
                          "--optimization", "single-level"]),
    "entrannas": ("nb201", []),
}


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(CASES))
def test_method_searches_resumes_and_its_cell_trains(method, tmp_path, capsys):
    space, extra = CASES[method]

    def argv(workdir, *more):
        return ["search", "--space", space, "--method", method, "--image-size", "8", "--batch-size", "4",
                "--epochs", "2", "--steps-per-epoch", "2", "--checkpoint-every", "2", "--log-every", "1",
                "--no-progress", "--workdir", str(workdir), *extra, *more]

    stop_then_resume_in_process(main, argv, tmp_path / "ref", tmp_path / "run")
    capsys.readouterr()
    for kind in ("step", "epoch", "final"):
        assert _records(tmp_path / "run", kind) == _records(tmp_path / "ref", kind)
    saved = json.loads((tmp_path / "ref" / "genotype.json").read_text())
    assert json.loads((tmp_path / "run" / "genotype.json").read_text()) == saved
    arch = np.load(tmp_path / "ref" / "arch.npz")
    if method == "toponas":  # the topology variables were learned, and the derived nodes keep 1 to 3 inputs
        assert {"normal_topology", "reduce_topology"} <= set(arch.files)
        assert all(1 <= k <= 3 for k in saved["genotype"].get("normal_fan_in", [2] * 4))
    if method == "entrannas-dst":  # every connection with a non-zero weight: the fan-in is written when not 2 each
        g = saved["genotype"]
        assert sum(g.get("normal_fan_in", [2] * 4)) == len(g["normal"])
        assert len(g["normal"]) < 4 * 7 * 3  # sparser than the dense start (98 connections)
    genotype_file = str(tmp_path / "ref" / "genotype.json")
    assert main(["describe", "--space", space, "--genotype", genotype_file, "--width", "4", "--depth", "3"]) == 0
    described = json.loads(capsys.readouterr().out)
    assert [c["cell"] for c in described["cells"]] == (["normal cell", "reduce cell"] if space == "darts" else ["cell"])
    assert all(c["depth"] >= 1 for c in described["cells"])
    train = ["train", "--genotype", genotype_file, "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4",
             "--image-size", "8", "--eval-examples", "8", "--auxiliary-weight", "0", "--cutout", "0", "--no-progress",
             "--workdir", str(tmp_path / "train")]
    if space == "darts":
        train += ["--width", "4", "--depth", "3"]
    assert main(train) == 0
    result = json.loads((tmp_path / "train" / "result.json").read_text())
    assert result["params"] > 0
    assert main(["plot", "--space", space, "--genotype", genotype_file, "--out", str(tmp_path / "cell.png")]) == 0
    assert (tmp_path / "cell.png").stat().st_size > 1000


def test_method_pieces_refuse_what_they_do_not_combine_with():
    with pytest.raises(ValueError, match="needs space darts"):
        SearchConfig(space="nb201", derivation="dst", transit_cells=True)
    with pytest.raises(ValueError, match="needs transit_cells"):
        SearchConfig(space="darts", derivation="dst")
    with pytest.raises(ValueError, match="does not combine with partial_channels"):
        SearchConfig(space="darts", transit_cells=True, partial_channels=2)
    with pytest.raises(ValueError, match="not one \\(use darts\\)"):
        SearchConfig(space="darts", transit_cells=True, relaxation="gdas")
    with pytest.raises(ValueError, match="needs derivation 'topology'"):
        SearchConfig(space="darts", topology_weight=0.1)
    with pytest.raises(ValueError, match="engine_cells places"):
        SearchConfig(space="darts", engine_cells=(1,))
    with pytest.raises(ValueError, match="feature_sharing is part of EnTranNAS's DARTS network"):
        SearchConfig(space="nb201", transit_cells=True, feature_sharing=True)
    assert SearchConfig(space="nb201", transit_cells=True).feature_sharing is None  # --method entrannas on NB201
