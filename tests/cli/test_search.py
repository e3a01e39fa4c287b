"""``jaxnas search`` / ``jaxnas train`` argument handling: bad values give one line on stderr and exit code 2."""

import pytest

from jaxnas.cli.main import build_parser, main
from jaxnas.cli.search import config_from_args


def run_cli(capsys, *args):
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["search", "--method", "enas"], "argument --method: invalid choice: 'enas'"),
        (["search", "--space", "nb101"], "argument --space: invalid choice"),
        (["search", "--optimization", "bilevel"], "argument --optimization: invalid choice"),
        (["search", "--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
        (["search", "--epochs", "0"], "epochs must be a positive integer, got 0"),
        (["search", "--batch-size", "-4"], "batch_size must be a positive integer, got -4"),
        (["search", "--width", "0"], "width must be a positive integer"),
        (["search", "--warmup-epochs", "9"], "warmup_epochs must be between 0 and epochs"),
        (["search", "--temperature", "cold"], "unknown temperature schedule 'cold'"),
        (["search", "--seed", "-1"], "seed must be a non-negative integer"),
        (["search", "--batch-size", "10", "--devices", "4"], "must divide evenly over 4 devices"),
        (["search", "--config", "/nonexistent/cfg.py"], "config file not found"),
        (["train"], "the following arguments are required: --genotype"),
        (["train", "--genotype", "|bad~0|+|none~0|none~1|+|none~0|none~1|none~2|"], "unknown NB201 op 'bad'"),
        (["train", "--genotype", "/nonexistent/genotype.json"], "genotype file not found"),
        (["train", "--genotype", "DARTS_V2", "--epochs", "0"], "epochs must be a positive integer"),
        (["train", "--genotype", "DARTS_V2", "--drop-path", "1.5"], "drop_path must be < 1"),
    ],
)
def test_bad_values_one_line_error(capsys, args, message):
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_unknown_flag_is_an_argparse_error(capsys):
    # reported by the top-level parser (cli.py): usage line + error line, no traceback
    code, _, err = run_cli(capsys, "search", "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err and "Traceback" not in err


def test_dataset_error_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "search", "--dataset", str(tmp_path / "missing.npz"), "--workdir",
                           str(tmp_path / "w"), "--no-progress")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not found" in err


def test_flags_override_config_file(tmp_path):
    cfg_file = tmp_path / "cfg.py"
    cfg_file.write_text(
        "from jaxnas.runners.search import SearchConfig\n"
        "def get_config(variant=''):\n"
        "    return SearchConfig(relaxation='gdas', epochs=7 if variant == 'long' else 2, width=4)\n"
    )
    parser = build_parser()
    args = parser.parse_args(["search", "--config", f"{cfg_file}:long", "--channels", "6", "--w-lr", "0.1"])
    cfg = config_from_args(args)
    assert (cfg.relaxation, cfg.epochs, cfg.width, cfg.optim.w_lr) == ("gdas", 7, 6, 0.1)


def test_default_search_config():
    args = build_parser().parse_args(["search"])
    cfg = config_from_args(args)
    assert (cfg.space, cfg.relaxation, cfg.dataset) == ("nb201", "darts", "embedded")


def test_a_diverged_search_is_one_line_and_exit_code_3(tmp_path, capsys):
    args = ["search", "--width", "2", "--depth", "1", "--image-size", "8", "--batch-size", "8", "--epochs", "1",
            "--steps-per-epoch", "3", "--checkpoint-every", "1", "--no-progress", "--conv-impl", "xla",
            "--workdir", str(tmp_path / "nan"), "--inject-nan-at", "2"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 3
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("jaxnas search: error: loss is nan at step 2 (epoch 0, step 2 of 3); the search "
                                "stopped and the last good checkpoint is step 2")
