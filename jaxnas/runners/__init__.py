"""Sequence tasks around recurrent cells: multivariate forecasting (LSTNet protocol) and word-level language
modelling (PTB format). Models in :mod:`jaxnas.nn.sequence`; loops in :mod:`jaxnas.runners.forecast` and
:mod:`jaxnas.runners.lm`."""

from jaxnas.runners.forecast import ForecastConfig, evaluate_forecast, run_forecast
from jaxnas.runners.lm import LMConfig, evaluate_lm, run_lm
from jaxnas.nn.sequence import Forecaster, LanguageModel

__all__ = [
    "ForecastConfig", "Forecaster", "LMConfig", "LanguageModel",
    "evaluate_forecast", "evaluate_lm", "run_forecast", "run_lm",
]
