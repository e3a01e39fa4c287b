"""jaxnas: a JAX-native, functional toolkit for neural architecture search."""

__version__ = "0.1.0"
