"""What a forecast user should know per series: the seasonality found, a history too short for
it, an intermittent (mostly zero) series, a forecast that is a flat line."""

from __future__ import annotations

import numpy as np
import pandas as pd

INTERMITTENT_ZEROS = 0.5     # the share of zero values from which a series is intermittent
Z_90 = 1.645
ANOVA_P = 0.01     # the level of the test that the positions in the season differ


def seasonality_found(y: np.ndarray, season: int) -> int:
    """``season`` when the series shows it, else 1. The trend is removed first (a centred moving
    average over one season, as classical decomposition does); then either the autocorrelation
    at lag ``season`` passes the 90% test the Theta method uses, r_m > 1.645 * sqrt((1 + 2 sum
    r_k^2, k < m) / n), or the means by position in the season differ (one-way analysis of
    variance, F test at the 1% level: the autocorrelation test alone misses a strong, clean
    season in a short series). A series under two seasons long has none."""
    if season <= 1 or len(y) < 2 * season + 1:
        return 1
    kernel = np.ones(season + 1 - season % 2)
    if season % 2 == 0:
        kernel[0] = kernel[-1] = 0.5
    half = (len(kernel) - 1) // 2
    x = y[half:len(y) - half] - np.convolve(y, kernel / season, mode="valid")
    x = x - x.mean()
    denom = float(np.dot(x, x))
    if denom <= 0 or len(x) <= season:
        return 1
    r = np.array([np.dot(x[k:], x[:len(x) - k]) / denom for k in range(1, season + 1)])
    bound = Z_90 * np.sqrt((1 + 2 * np.sum(r[:-1] ** 2)) / len(x))
    return season if r[-1] > bound or _phases_differ(x, season) else 1


def _phases_differ(x: np.ndarray, season: int) -> bool:
    from scipy.stats import f

    phase = np.arange(len(x)) % season
    means = np.bincount(phase, x) / np.bincount(phase)
    within = float(np.sum((x - means[phase]) ** 2))
    between = float(np.sum(np.bincount(phase) * means ** 2))     # x has mean 0
    dof = len(x) - season
    if dof <= 0 or within <= 0:
        return within <= 0 < between
    return float(f.sf(between / (season - 1) / (within / dof), season - 1, dof)) < ANOVA_P


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
