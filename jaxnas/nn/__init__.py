"""Flax modules: ops and their kernels (:mod:`~jaxnas.nn.ops`), supernets that receive edge weights
(:mod:`~jaxnas.nn.supernet`), discrete networks (:mod:`~jaxnas.nn.networks`), recurrent cells
(:mod:`~jaxnas.nn.recurrent`), sequence models (:mod:`~jaxnas.nn.sequence`), growable networks
(:mod:`~jaxnas.nn.grow`) and cost counting (:mod:`~jaxnas.nn.costs`)."""
