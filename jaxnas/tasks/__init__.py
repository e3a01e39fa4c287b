"""Sequence tasks around recurrent cells: multivariate forecasting (LSTNet protocol) and word-level language
modelling (PTB format). Models in :mod:`jaxnas.tasks.models`; loops in :mod:`jaxnas.tasks.forecast` and
:mod:`jaxnas.tasks.lm`."""

from jaxnas.tasks.forecast import ForecastConfig, evaluate_forecast, run_forecast
from jaxnas.tasks.lm import LMConfig, evaluate_lm, run_lm
from jaxnas.tasks.models import Forecaster, LanguageModel

__all__ = [
    "ForecastConfig", "Forecaster", "LMConfig", "LanguageModel",
    "evaluate_forecast", "evaluate_lm", "run_forecast", "run_lm",
]
