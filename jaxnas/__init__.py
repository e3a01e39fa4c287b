"""jaxnas: a JAX-native, functional toolkit for neural architecture search.

The curated public names, each listed once; they are imported on first use (``import jaxnas`` stays light, so the
``jaxnas`` command can choose the host allocator before JAX starts)::

    import jaxnas
    space = jaxnas.get_space("nb201")
    step = jaxnas.make_step(model, mode="bilevel-1st", relaxation="darts", w_optimizer=..., a_optimizer=...)

Subpackages: ``spaces`` (pure search spaces), ``nn`` (flax modules), ``search`` (steps, data parallel, morphisms),
``strategies``, ``benchmarks``, ``runners`` (resumable jobs), ``data``, ``io``, ``platform``, ``cli``.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    # the registry of spaces
    "get_space": "jaxnas.registry", "get_entry": "jaxnas.registry", "register_space": "jaxnas.registry",
    "space_names": "jaxnas.registry", "SpaceEntry": "jaxnas.registry", "genotype_from_json": "jaxnas.registry",
    # relaxations
    "get_relaxation": "jaxnas.relax", "register_relaxation": "jaxnas.relax", "Relaxation": "jaxnas.relax",
    # steps
    "make_step": "jaxnas.search.steps", "init_search_state": "jaxnas.search.steps", "SearchState": "jaxnas.search.steps",
    "OptimConfig": "jaxnas.search.steps", "make_weight_optimizer": "jaxnas.search.steps",
    "make_arch_optimizer": "jaxnas.search.steps",
    # strategies
    "get_strategy": "jaxnas.strategies",
    # runners
    "SearchConfig": "jaxnas.runners.search", "run_search": "jaxnas.runners.search",
    "run_progressive": "jaxnas.runners.progressive",
    "TrainConfig": "jaxnas.runners.train", "train_and_evaluate": "jaxnas.runners.train",
    "GrowConfig": "jaxnas.runners.grow", "run_growing_search": "jaxnas.runners.grow",
    "ForecastConfig": "jaxnas.runners.forecast", "run_forecast": "jaxnas.runners.forecast",
    "LMConfig": "jaxnas.runners.lm", "run_lm": "jaxnas.runners.lm",
    "Task": "jaxnas.runners.loop", "LoopOptions": "jaxnas.runners.loop", "DivergedError": "jaxnas.runners.loop",
}
_SUBPACKAGES = ("benchmarks", "cli", "data", "io", "nn", "platform", "registry", "relax", "runners", "search",
                "spaces", "strategies")

__all__ = sorted(_PUBLIC) + list(_SUBPACKAGES)


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"jaxnas.{name}")
    raise AttributeError(f"module 'jaxnas' has no attribute {name!r}")


def __dir__():
    return __all__
