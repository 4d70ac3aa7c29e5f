"""Forecasting engine: quantile forecasts (P10/P50/P90, any list) for one or many series.

Pure Python over pandas and numpy, no DuckDB and no catalog: the SQL side prepares a regular
panel (one row per series and period) and calls ``engine.fit_forecast``; the result holds only
DataFrames, lists, dicts and scalars, which the SQL side stores as tables.

Modules, in the order a fit runs them: ``checks`` (the arguments), ``series`` (the panel as
arrays), ``baselines`` / ``statistical`` / ``gbm`` (the methods), ``backtest`` (rolling-origin
windows), ``conformal`` (quantiles from the backtest residuals per horizon step), ``select``
(AUTO), ``metrics`` and ``diagnostics``.
"""
