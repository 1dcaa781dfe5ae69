"""Migration forecast (issue 14): will a pre-copy migration converge, when, with what downtime.

Pure functions and frozen data only, no I/O and nothing from ferry.engine / ferry.agent /
ferry.cli, so the engine's planner, the agent and a fleet simulator can all use it:

- `model`: the pre-copy model (ForecastInputs -> Forecast, iteration by iteration);
- `bias`: the corrections for how dirty rates are measured here, with their numbers;
- `bandwidth`: which bandwidth to use (cap, link, measured) and per-host-pair calibration;
- `live`: the ETA of a running migration from its live job stats.
"""
from ferry.forecast.model import (
    ABORT,
    CONVERGE,
    POSTCOPY,
    SET_DOWNTIME,
    Forecast,
    ForecastInputs,
    Step,
    forecast,
)

__all__ = ["ABORT", "CONVERGE", "POSTCOPY", "SET_DOWNTIME", "Forecast", "ForecastInputs", "Step", "forecast"]
