"""Model costs: parameter counts and FLOPs (multiply-adds of convolutions and dense layers, as NAS-Bench-201 and
DARTS count them), computed by tracing a forward pass with ``jax.eval_shape`` (nothing is executed)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxnas.nn.ops import Conv, count_params

__all__ = ["count_params", "count_flops", "param_count", "profile", "init_shapes", "image_spec"]


def param_count(variables, exclude: tuple[str, ...] = ()) -> int:
    """Scalars in ``variables['params']``, leaving out top-level submodules named in ``exclude``."""
    params = variables["params"] if "params" in variables else variables
    return count_params({k: v for k, v in params.items() if k not in exclude})


def _flop_counter(exclude: tuple[str, ...]):
    """An interceptor adding the FLOPs of every Conv and Dense call to ``total[0]``."""
    total = [0]

    def interceptor(next_fun, f_args, f_kwargs, context):
        out = next_fun(*f_args, **f_kwargs)
        module = context.module
        if context.method_name != "__call__" or (module.path and module.path[0] in exclude):
            return out
        if isinstance(module, Conv):
            x = f_args[0]
            k = module.kernel_size
            n, ho, wo, cout = out.shape
            flops = n * ho * wo * k * k * (x.shape[-1] // module.groups) * cout
            if module.use_bias:
                flops += n * ho * wo * cout
            total[0] += flops
        elif isinstance(module, nn.Dense):
            x = f_args[0]
            flops = x.size * module.features
            if module.use_bias:
                flops += out.size
            total[0] += flops
        return out

    return interceptor, total


def count_flops(model: nn.Module, variables, *args, exclude: tuple[str, ...] = (), **kwargs) -> int:
    """FLOPs of one forward pass of ``model.apply(variables, *args, **kwargs)`` for the whole batch.

    A convolution costs Ho*Wo*k*k*Cin/groups*Cout per sample (+ Ho*Wo*Cout with a bias), a dense layer in*out
    (+ out with a bias); pooling, BN and element-wise ops are not counted. Modules whose path starts with a name in
    ``exclude`` (e.g. ``auxiliary_head``) are skipped.
    """
    interceptor, total = _flop_counter(exclude)

    def run(variables, *args):
        with nn.intercept_methods(interceptor):
            return model.apply(variables, *args, **kwargs, mutable=["batch_stats"])

    jax.eval_shape(run, variables, *args)
    return int(total[0])


def profile(model: nn.Module, *args, exclude: tuple[str, ...] = (), **kwargs) -> tuple[int, int]:
    """``(params, flops)`` of a model from a single traced ``init`` (cheaper than init + count_flops)."""
    interceptor, total = _flop_counter(exclude)

    def run(*args):
        with nn.intercept_methods(interceptor):
            return model.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, *args, **kwargs)

    variables = jax.eval_shape(run, *args)
    return param_count(variables, exclude), int(total[0])


def init_shapes(model: nn.Module, *args, rngs=None, **kwargs):
    """Variable shapes of ``model`` (``jax.ShapeDtypeStruct`` leaves) without allocating or computing anything."""
    rngs = rngs if rngs is not None else {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
    return jax.eval_shape(lambda *a: model.init(rngs, *a, **kwargs), *args)


def image_spec(batch: int, size: int, channels: int = 3):
    return jax.ShapeDtypeStruct((batch, size, size, channels), jnp.float32)
