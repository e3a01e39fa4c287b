"""Runners: the only part of jaxnas that writes files and shows progress. Every long job is a task on the one
resumable loop (:mod:`jaxnas.runners.loop`): image search (:mod:`~jaxnas.runners.search`), growing conv search
(:mod:`~jaxnas.runners.grow`), retraining (:mod:`~jaxnas.runners.train`), forecasting
(:mod:`~jaxnas.runners.forecast`), language modelling (:mod:`~jaxnas.runners.lm`) and the recurrent growing search
(:mod:`~jaxnas.runners.recurrent_growth`)."""

from jaxnas.runners.forecast import ForecastConfig, evaluate_forecast, run_forecast
from jaxnas.runners.grow import GrowConfig, run_growing_search
from jaxnas.runners.lm import LMConfig, evaluate_lm, run_lm
from jaxnas.runners.loop import DivergedError, LoopOptions, Task, run
from jaxnas.runners.recurrent_growth import GrowForecastConfig, GrowLMConfig, run_growing_forecast, run_growing_lm
from jaxnas.runners.search import SearchConfig, run_search
from jaxnas.runners.train import TrainConfig, train_and_evaluate

__all__ = [
    "DivergedError", "ForecastConfig", "GrowConfig", "GrowForecastConfig", "GrowLMConfig", "LMConfig", "LoopOptions",
    "SearchConfig", "Task", "TrainConfig", "evaluate_forecast", "evaluate_lm", "run", "run_forecast",
    "run_growing_forecast", "run_growing_lm", "run_growing_search", "run_lm", "run_search", "train_and_evaluate",
]
