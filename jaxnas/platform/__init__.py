"""The platform: settings read from the environment (:mod:`~jaxnas.platform.settings`, the only reader of the
process environment), XLA compiler options (:mod:`~jaxnas.platform.xla`), the host allocator
(:mod:`~jaxnas.platform.hostmem`) and the compilation cache (:mod:`~jaxnas.platform.cache`)."""
