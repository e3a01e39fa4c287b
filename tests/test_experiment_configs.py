"""The search configs in experiments/configs load through the CLI's config loader and are valid configs."""

from pathlib import Path

import pytest

from jaxnas.cli.search import load_config_file
from jaxnas.runners.search import SearchConfig

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


@pytest.mark.parametrize("variant", ["pdarts", "pcdarts", "sdarts-rs", "sdarts-adv", "msdarts", "dartsprime",
                                     "quick-pdarts"])
def test_every_darts_family_variant_is_a_valid_search_config(variant):
    cfg = load_config_file(f"{CONFIGS / 'darts_family_search.py'}:{variant}")
    assert isinstance(cfg, SearchConfig) and cfg.space == "darts"
    if "pdarts" in variant:
        assert cfg.stage_ops == (5, 3, 1) and cfg.max_skips == 2
    with pytest.raises(ValueError, match="unknown variant"):
        load_config_file(f"{CONFIGS / 'darts_family_search.py'}:nope")


@pytest.mark.parametrize("variant", ["entrannas", "entrannas-dst", "toponas", "toponas-gdas", "quick-entrannas",
                                     "quick-entrannas-dst", "quick-toponas", "nb201-entrannas"])
def test_every_entrannas_toponas_variant_is_a_valid_search_config(variant):
    cfg = load_config_file(f"{CONFIGS / 'entrannas_toponas_search.py'}:{variant}")
    assert isinstance(cfg, SearchConfig)
    assert cfg.transit_cells == ("entrannas" in variant)
    assert cfg.derivation == {"entrannas-dst": "dst", "toponas": "topology"}.get(
        variant.replace("quick-", "").replace("-gdas", ""), "top-k")
    with pytest.raises(ValueError, match="unknown variant"):
        load_config_file(f"{CONFIGS / 'entrannas_toponas_search.py'}:nope")
