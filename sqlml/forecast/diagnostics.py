"""What a forecast user should know per series: the seasonality found, a history too short for
it, an intermittent (mostly zero) series, a forecast that is a flat line."""

from __future__ import annotations

import numpy as np
import pandas as pd

INTERMITTENT_ZEROS = 0.5     # the share of zero values from which a series is intermittent
Z_90 = 1.645


def seasonality_found(y: np.ndarray, season: int) -> int:
    """``season`` when the series shows it, else 1: the autocorrelation at lag ``season`` of the
    differenced series passes the 90% test the Theta method uses (|r_m| > 1.645 *
    sqrt((1 + 2 sum r_k^2, k < m) / n)); a series under two seasons long has none."""
    if season <= 1 or len(y) < 2 * season + 1:
        return 1
    x = np.diff(y)
    x = x - x.mean()
    denom = float(np.dot(x, x))
    if denom <= 0:
        return 1
    r = np.array([np.dot(x[k:], x[:len(x) - k]) / denom for k in range(1, season + 1)])
    bound = Z_90 * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(x))
    return season if abs(r[-1]) > bound else 1


def series_flags(uid: str, y: np.ndarray, season: int, p50: np.ndarray,
                 method: str) -> list[tuple[str, str, str]]:
    """(unique_id, flag, detail) rows for one series."""
    flags = []
    if season > 1 and len(y) < 2 * season:
        flags.append((uid, "too_short_for_seasonality",
                      f"{len(y)} points, fewer than two seasons of {season}: fitted without "
                      f"seasonality"))
    zeros = float(np.mean(y == 0))
    if zeros >= INTERMITTENT_ZEROS:
        flags.append((uid, "intermittent", f"{zeros:.0%} of the {len(y)} values are 0"))
    if len(p50) > 1 and np.ptp(p50) <= 1e-9 * max(1.0, float(np.abs(p50).max())):
        flags.append((uid, "flat_forecast",
                      f"the P50 is {float(p50[0]):.6g} at every step ({method})"))
    return flags


def frame(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["unique_id", "flag", "detail"]).astype(
        {"unique_id": str, "flag": str, "detail": str})
