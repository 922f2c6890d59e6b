"""The drift statistics (deployments/drift.py) on generated data with fixed seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deployments import drift


def _numeric(seed: int, n: int, shift: float = 0.0, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.normal(40 + shift * 10, 10 * scale, n),
            "bmi": rng.normal(25 + shift * 4, 4 * scale, n),
        }
    )


def test_the_same_distribution_is_not_drifted():
    report = drift.compare(_numeric(1, 5000), _numeric(2, 500))
    assert not report.drifted
    assert report.magnitude < 0.1
    for figures in report.features.values():
        assert figures.kind == drift.NUMERIC
        assert figures.ks_pvalue > 0.01
        assert figures.psi < 0.1


def test_a_shifted_normal_is_drifted():
    report = drift.compare(_numeric(1, 5000), _numeric(2, 500, shift=1.0))
    assert report.drifted
    # A shift of one standard deviation reads as about 1.
    assert report.features["age"].wasserstein == pytest.approx(1.0, abs=0.15)
    assert report.magnitude > 0.8
    for figures in report.features.values():
        assert figures.ks_pvalue < 1e-6
        assert figures.psi > 0.5
    assert sum(f.contribution for f in report.features.values()) == pytest.approx(1.0)


def test_only_the_feature_that_moved_contributes():
    baseline, window = _numeric(1, 5000), _numeric(2, 500)
    window["bmi"] += 8  # two standard deviations
    report = drift.compare(baseline, window, threshold=0.3)
    assert report.features["bmi"].contribution > 0.9
    assert report.features["age"].contribution < 0.1
    # The mean of the clipped scores: bmi's 1 and age's ~0.
    assert report.magnitude == pytest.approx(0.5, abs=0.06)
    assert report.drifted


def test_a_categorical_shift_is_detected_and_no_shift_is_not():
    rng = np.random.default_rng(3)
    base = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], 3000, p=[0.5, 0.3, 0.2])})
    same = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], 400, p=[0.5, 0.3, 0.2])})
    moved = pd.DataFrame({"color": rng.choice(["red", "green", "blue"], 400, p=[0.1, 0.2, 0.7])})
    calm = drift.compare(base, same)
    shifted = drift.compare(base, moved)
    assert calm.features["color"].kind == drift.CATEGORICAL
    assert calm.features["color"].js < 0.1 and calm.features["color"].chi2_pvalue > 0.01
    assert not calm.drifted
    assert shifted.features["color"].js > 0.3
    assert shifted.features["color"].chi2_pvalue < 1e-10
    assert shifted.drifted
    # The statistics of the other kind are not reported.
    assert "wasserstein" not in shifted.features_dict()["color"]


def test_a_numeric_column_listed_as_categorical_is_compared_as_categories():
    base = pd.DataFrame({"sex": [1, 2] * 500})
    window = pd.DataFrame({"sex": [1.0] * 90 + [2.0] * 10})
    report = drift.compare(base, window, categorical=["sex"])
    figures = report.features["sex"]
    assert figures.kind == drift.CATEGORICAL
    assert figures.js > 0.2
    assert drift.feature_kinds(base) == {"sex": drift.NUMERIC}


def test_a_new_category_only_in_the_window_counts_and_chi2_is_guarded():
    base = pd.DataFrame({"c": ["a"] * 100})
    window = pd.DataFrame({"c": ["b"] * 10})
    report = drift.compare(base, window)
    assert report.features["c"].js == pytest.approx(1.0)
    assert 0 <= report.features["c"].chi2_pvalue < 0.01
    # One category on both sides: nothing to test, no error.
    assert drift.chi2_pvalue(np.array([[5.0, 0.0], [7.0, 0.0]])) == 1.0


def test_constant_columns():
    base = pd.DataFrame({"x": [3.0] * 50})
    assert drift.compare(base, pd.DataFrame({"x": [3.0] * 10})).features["x"].wasserstein == 0
    moved = drift.compare(base, pd.DataFrame({"x": [4.0] * 10})).features["x"]
    assert moved.wasserstein == 1.0 and moved.score == 1.0


def test_psi_of_equal_samples_is_zero_and_empty_bins_do_not_blow_up():
    values = np.arange(1000, dtype=float)
    assert drift.psi(values, values) == pytest.approx(0.0, abs=1e-12)
    far = drift.psi(values, values + 10_000)  # every window value in the last bin
    assert np.isfinite(far) and far > 5


def test_missing_features_and_non_numbers():
    base = _numeric(1, 200)
    window = pd.DataFrame({"age": ["n/a", None, 41.0, 39.0]})
    report = drift.compare(base, window)
    assert report.missing == ["bmi"]
    assert report.features["age"].window_rows == 2
    assert set(report.features) == {"age"}
    empty = drift.compare(base, pd.DataFrame({"other": [1, 2]}))
    assert empty.magnitude == 0 and not empty.drifted and empty.missing == ["age", "bmi"]


def test_features_dict_is_json_ready():
    import json

    report = drift.compare(_numeric(1, 100), _numeric(2, 50, shift=0.5))
    text = json.dumps(report.features_dict(), allow_nan=False)
    assert '"ks_pvalue"' in text and '"contribution"' in text


def test_frame_from_inputs_names_columns_by_request_or_by_the_baseline():
    frame = drift.frame_from_inputs(
        [
            {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]},
            {"data": [[3, "z"]]},  # the reference's {"data": ...}: the baseline's names
            None,
            {"columns": ["a", "b"], "data": []},
        ],
        columns=["a", "b"],
    )
    assert list(frame["a"]) == [1, 2, 3]
    assert list(frame["b"]) == ["x", "y", "z"]
    assert drift.is_numeric_dtype(frame["a"])
    assert list(drift.frame_from_inputs([{"data": [[1, 2, 3]]}]).columns) == ["0", "1", "2"]
    assert drift.frame_from_inputs([], columns=["a"]).empty
