import json

import pytest

from jaxnas.cli import main


def _describe(capsys, *args):
    assert main(["describe", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_describe_darts_v2(capsys):
    out = _describe(capsys, "--space", "darts", "--genotype", "DARTS_V2", "--channels", "36", "--layers", "20",
                    "--auxiliary")
    assert out["params"] == 3349342
    assert out["params_with_auxiliary"] > out["params"]
    assert out["genotype"]["normal"][0] == ["sep_conv_3x3", 0]
    assert 500e6 < out["flops"] < 560e6


def test_describe_nb201_arch(capsys, shared_data):
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    out = _describe(capsys, "--space", "nb201", "--arch", arch, "--dataset", "cifar100")
    assert out["params"] == 808276  # params_mb_cifar100 of NB201 index 1
    assert out["arch"] == arch


def test_describe_nb201_supernet(capsys):
    out = _describe(capsys, "--space", "nb201", "--supernet", "--channels", "4", "--layers", "1")
    assert out["model"] == "NB201Supernet" and out["params"] > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--space", "nb201", "--arch", "|bad~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown NB201 op 'bad'"),
        (["--space", "darts", "--genotype", "DARTS_V7"], "expected a JSON object, a JSON file or one of"),
        (["--space", "nb201", "--supernet", "--width", "0"], "--width must be a positive integer"),
        (["--space", "nb201", "--genotype", "DARTS_V2"], "malformed NB201 string"),
    ],
)
def test_bad_input_is_one_line_error(capsys, args, message):
    assert main(["describe", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_describe_darts_rnn_v2(capsys):
    """DARTS_V2 recurrent cell at the PTB size: W0 (2H x 2H) + 8 node matrices (H x 2H), no biases."""
    out = _describe(capsys, "--space", "darts-rnn", "--genotype", "DARTS_V2", "--hidden", "850")
    assert out["params"] == 2 * 850 * 1700 + 8 * 850 * 1700 == 14_450_000
    assert out["model"] == "DartsRnnCell" and out["genotype"]
    small = _describe(capsys, "--space", "darts-rnn", "--supernet", "--hidden", "8")
    assert small["params"] == 2 * 8 * 16 + 8 * 8 * 16  # one matrix per node, shared over its predecessors
