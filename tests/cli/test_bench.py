"""``jaxnas bench nb201``: tiny simulated searches through the command line, JSON output, clear errors."""

import json

import pytest

from jaxnas.cli import main


# (bo on NB201 is covered by tests/strategies)
@pytest.mark.parametrize("strategy,dataset", [("rea", "cifar10"), ("reinforce", "imagenet16")])
def test_bench_json(capsys, strategy, dataset):
    argv = ["bench", "nb201", "--strategy", strategy, "--queries", "12", "--runs", "3", "--dataset", dataset,
            "--seed", "1", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["strategy"] == strategy and out["dataset"] == dataset and out["runs"] == 3 and out["queries"] == 12
    assert 0 < out["mean"] <= out["optimum"] and out["std"] >= 0
    assert out["optimum"] == pytest.approx({"cifar10": 94.3733, "imagenet16": 47.3111}[dataset])
    assert main(argv) == 0  # same seed, same figures
    again = json.loads(capsys.readouterr().out)
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in out.items() if k != "seconds"}


def test_bench_text(capsys):
    assert main(["bench", "nb201", "--strategy", "random", "--queries", "5", "--runs", "2"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("nb201 cifar10 random: test acc ") and "+-" in line


@pytest.mark.parametrize("args,message", [
    (["nb201", "--strategy", "sa"], "unknown strategy 'sa'; allowed: random, rea, reinforce, bo"),
    (["nb201", "--dataset", "mnist"], "unknown NB201 dataset 'mnist'; allowed: cifar10, cifar100, imagenet16"),
    (["nb101"], "unknown benchmark 'nb101'; allowed: nb201"),
    (["nb201", "--queries", "0"], "queries and runs must be >= 1"),
])
def test_bench_errors(capsys, args, message):
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
