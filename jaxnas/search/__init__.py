"""Differentiable search: state, optimizers and jitted steps (single-level, bi-level first and exact second order),
data parallel over a device mesh."""

from jaxnas.search import parallel
from jaxnas.search.steps import (
    ARCH_MODES,
    HESSIANS,
    MODES,
    OptimConfig,
    SearchState,
    accuracy,
    cross_entropy,
    current_learning_rate,
    init_search_state,
    make_arch_optimizer,
    make_step,
    make_weight_optimizer,
    make_weight_schedule,
    unpack_batch,
    unrolled_arch_grad,
)


__all__ = [
    "ARCH_MODES",
    "HESSIANS",
    "MODES",
    "OptimConfig",
    "SearchState",
    "accuracy",
    "cross_entropy",
    "current_learning_rate",
    "init_search_state",
    "make_arch_optimizer",
    "make_step",
    "make_weight_optimizer",
    "make_weight_schedule",
    "parallel",
    "unpack_batch",
    "unrolled_arch_grad",
]
