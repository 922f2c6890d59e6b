"""Data drift statistics: one window of a service's inputs against a baseline.

Pure functions over pandas frames (scipy.stats), no Django: `compare(baseline, window)`
answers a `DriftReport` the monitor services store and chart.

Per feature:

- numeric columns: the Wasserstein (earth mover's) distance **normed by the baseline's
  standard deviation** (so "1.0" reads "moved by one standard deviation"); when the
  baseline is constant the window's deviation is used, and when both are constant the
  distance is 0 if they hold the same value and 1 otherwise. Also the two-sample
  Kolmogorov–Smirnov p-value and the population stability index (PSI) over 10 bins cut
  at the baseline's deciles, with `PSI_EPSILON` standing in for an empty bin's share.
- categorical columns: the Jensen–Shannon distance of the category frequencies (base 2,
  so it lies in [0, 1]) and the chi² test p-value of the 2×k table of counts (categories
  seen on neither side do not exist; a single category is p = 1).

The per-feature **score** lies in [0, 1]: the normed Wasserstein distance clipped at 1
for a numeric feature, the Jensen–Shannon distance for a categorical one. The overall
**drift magnitude** is the mean score over the features compared, and each feature's
**contribution** is its share of the summed scores (0 when nothing moved). A window is
drifted when its magnitude reaches the threshold.

Type detection: a column of a numeric dtype (bool excluded) is numeric unless it is listed
as categorical; everything else is categorical.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

NUMERIC = "numeric"
CATEGORICAL = "categorical"
PSI_BINS = 10
PSI_EPSILON = 1e-4
DEFAULT_THRESHOLD = 0.2
MISSING = "<missing>"  # the category of a missing value


@dataclass
class FeatureDrift:
    """One feature's figures; statistics that do not apply to its kind are None."""

    name: str
    kind: str
    score: float
    baseline_rows: int
    window_rows: int
    wasserstein: float | None = None
    ks_pvalue: float | None = None
    psi: float | None = None
    js: float | None = None
    chi2_pvalue: float | None = None
    contribution: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {
            "kind": self.kind,
            "score": self.score,
            "contribution": self.contribution,
            "baseline_rows": self.baseline_rows,
            "window_rows": self.window_rows,
        }
        stats_of_kind = (
            ("wasserstein", "ks_pvalue", "psi") if self.kind == NUMERIC else ("js", "chi2_pvalue")
        )
        for key in stats_of_kind:
            out[key] = _finite(getattr(self, key))
        return out


@dataclass
class DriftReport:
    magnitude: float
    drifted: bool
    threshold: float
    rows: int
    features: dict[str, FeatureDrift] = field(default_factory=dict)
    # Monitored features the window has no column (or no value) for.
    missing: list[str] = field(default_factory=list)

    def features_dict(self) -> dict[str, dict[str, Any]]:
        return {name: feature.as_dict() for name, feature in self.features.items()}


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: such a figure is unknown (None)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# --- Types ---------------------------------------------------------------------------------


def is_numeric_dtype(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def feature_kinds(
    frame: pd.DataFrame, categorical: Iterable[str] = (), features: Sequence[str] | None = None
) -> dict[str, str]:
    """{column: "numeric" | "categorical"} for `features` (default: every column)."""
    listed = set(categorical)
    names = list(features) if features is not None else list(frame.columns)
    return {
        name: NUMERIC if name not in listed and is_numeric_dtype(frame[name]) else CATEGORICAL
        for name in names
        if name in frame.columns
    }


# --- Numeric -------------------------------------------------------------------------------


def numeric_values(series: pd.Series) -> np.ndarray:
    """The column's finite numbers; text that is not a number and missing values drop."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values[np.isfinite(values)]


def normed_wasserstein(baseline: np.ndarray, window: np.ndarray) -> float:
    distance = float(stats.wasserstein_distance(baseline, window))
    scale = float(np.std(baseline))
    if scale <= 0:
        scale = float(np.std(window))
    if scale <= 0:
        # Both constant: the same value, or wholly moved.
        return 0.0 if distance == 0 else 1.0
    return distance / scale


def psi(baseline: np.ndarray, window: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over bins cut at the baseline's quantiles."""
    edges = np.unique(np.quantile(baseline, np.linspace(0, 1, bins + 1)[1:-1]))
    # Open-ended outer bins: values beyond the baseline's range still count.
    cuts = np.concatenate(([-np.inf], edges, [np.inf]))
    expected = np.histogram(baseline, cuts)[0] / len(baseline)
    actual = np.histogram(window, cuts)[0] / len(window)
    expected = np.where(expected == 0, PSI_EPSILON, expected)
    actual = np.where(actual == 0, PSI_EPSILON, actual)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def numeric_drift(name: str, baseline: pd.Series, window: pd.Series) -> FeatureDrift | None:
    """None when either side has no number to compare."""
    b, w = numeric_values(baseline), numeric_values(window)
    if len(b) == 0 or len(w) == 0:
        return None
    wasserstein = normed_wasserstein(b, w)
    return FeatureDrift(
        name=name,
        kind=NUMERIC,
        score=min(wasserstein, 1.0),
        baseline_rows=len(b),
        window_rows=len(w),
        wasserstein=wasserstein,
        ks_pvalue=float(stats.ks_2samp(b, w).pvalue),
        psi=psi(b, w),
    )


# --- Categorical ---------------------------------------------------------------------------


def category_values(series: pd.Series) -> pd.Series:
    """Values as text categories (1 and "1" are one category; missing is its own)."""
    return series.map(lambda v: MISSING if _is_missing(v) else _category(v))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _category(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 from a float column is the category "1"
    return str(value)


def categorical_drift(name: str, baseline: pd.Series, window: pd.Series) -> FeatureDrift | None:
    b, w = category_values(baseline), category_values(window)
    if len(b) == 0 or len(w) == 0:
        return None
    b_counts, w_counts = b.value_counts(), w.value_counts()
    categories = sorted(set(b_counts.index) | set(w_counts.index))
    table = np.array(
        [
            [b_counts.get(c, 0) for c in categories],
            [w_counts.get(c, 0) for c in categories],
        ],
        dtype=float,
    )
    js = float(jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum(), base=2))
    js = 0.0 if not math.isfinite(js) else min(max(js, 0.0), 1.0)
    return FeatureDrift(
        name=name,
        kind=CATEGORICAL,
        score=js,
        baseline_rows=len(b),
        window_rows=len(w),
        js=js,
        chi2_pvalue=chi2_pvalue(table),
    )


def chi2_pvalue(table: np.ndarray) -> float:
    """The chi² p-value of a 2×k table of counts; columns of zeros are dropped (no
    expected frequency may be 0), and fewer than two categories left is no evidence."""
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.chi2_contingency(table).pvalue)


# --- The window ----------------------------------------------------------------------------


def compare(
    baseline: pd.DataFrame,
    window: pd.DataFrame,
    *,
    features: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
) -> DriftReport:
    """Compare a window of inputs with the baseline.

    `features`: the columns compared (default: the baseline's columns); kinds come from
    the baseline's dtypes (`feature_kinds`). A feature the window lacks, or has no value
    for, is listed in `missing` and left out of the magnitude."""
    kinds = feature_kinds(baseline, categorical, features)
    report = DriftReport(magnitude=0.0, drifted=False, threshold=threshold, rows=len(window))
    for name, kind in kinds.items():
        if name not in window.columns:
            report.missing.append(name)
            continue
        compute = numeric_drift if kind == NUMERIC else categorical_drift
        figures = compute(name, baseline[name], window[name])
        if figures is None:
            report.missing.append(name)
            continue
        report.features[name] = figures
    total = sum(f.score for f in report.features.values())
    for figures in report.features.values():
        figures.contribution = figures.score / total if total > 0 else 0.0
    if report.features:
        report.magnitude = total / len(report.features)
    report.drifted = bool(report.features) and report.magnitude >= threshold
    return report


def frame_from_inputs(
    inputs: Iterable[dict[str, Any] | None], columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """A frame of scoring inputs as the studio samples them
    (`{"columns": [...], "data": [[...], ...]}`, one per request).

    A request without column names (the reference's `{"data": [[...]]}`) takes
    `columns` (the baseline's) when its rows are as wide, positional names otherwise."""
    parts: list[pd.DataFrame] = []
    for item in inputs:
        if not isinstance(item, dict):
            continue
        data = item.get("data")
        if not isinstance(data, list) or not data:
            continue
        rows = [row if isinstance(row, list) else [row] for row in data]
        width = max(len(row) for row in rows)
        names = item.get("columns")
        if not isinstance(names, list) or len(names) != width:
            if columns is not None and len(columns) == width:
                names = list(columns)
            else:
                names = [str(i) for i in range(width)]
        rows = [row + [None] * (width - len(row)) for row in rows]
        parts.append(pd.DataFrame(rows, columns=[str(n) for n in names]))
    if not parts:
        return pd.DataFrame(columns=list(columns or []))
    frame = pd.concat(parts, ignore_index=True, sort=False)
    # JSON numbers arrive as objects when a column mixes ints and None: numeric again.
    for name in frame.columns:
        if frame[name].dtype == object:
            converted = pd.to_numeric(frame[name], errors="coerce")
            if converted.notna().sum() == frame[name].notna().sum():
                frame[name] = converted
    return frame
