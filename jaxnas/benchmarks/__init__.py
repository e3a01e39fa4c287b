"""Tabular benchmarks and latency models.

* :mod:`jaxnas.benchmarks.nb201`: the NAS-Bench-201 table (accuracies, params, FLOPs, HELP latencies), shipped
  compressed; ``nb201.load()``.
* :mod:`jaxnas.benchmarks.latency`: latency predictor (MLP on the encoding), on-device latency measurement of
  discrete networks, and a differentiable expected-latency penalty for search losses.
"""
