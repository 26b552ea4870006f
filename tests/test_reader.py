"""Reading a user's table: every problem is one clear error naming the column, rows and fix."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groupfx.errors import InputError
from groupfx.reader import DataWarning, read_data

COLUMNS = {"y": "passed", "x": "hours", "group": "school", "z": "funding"}


def good_frame(n_groups: int = 4, per_group: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = np.repeat([f"s{g}" for g in range(n_groups)], per_group)
    funding = np.repeat(rng.normal(size=n_groups), per_group)
    hours = rng.normal(size=school.size)
    passed = np.tile([0, 1], school.size // 2)
    return pd.DataFrame({"school": school, "hours": hours, "passed": passed, "funding": funding})


def read(frame_or_path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_data(frame_or_path, **COLUMNS, **kwargs)


def test_a_good_table_round_trips_with_its_labels(tmp_path):
    frame = good_frame()
    csv, parquet = tmp_path / "d.csv", tmp_path / "d.parquet"
    frame.to_csv(csv, index=False)
    frame.to_parquet(parquet)
    for source in (frame, csv, parquet):
        data = read(source)
        assert data.n_units == 24 and data.n_groups == 4
        assert list(data.group_labels) == ["s0", "s1", "s2", "s3"]
        np.testing.assert_allclose(data.x[:, 0], frame.hours)
        assert data.names == {"y": "passed", "group": "school"}
        assert data.x_names == ("hours",) and data.z_names == ("funding",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="hours"),
         r"Column 'hours' \(unit-level variable\) is not in the table.*--x"),
        (lambda f: f.assign(hours=f.hours.astype(object).where(f.index != 2, "lots")),
         r"Column 'hours' \(unit-level variable\) is not numeric: row 3 hold 'lots'"),
        (lambda f: f.assign(hours=f.hours.where(f.index != 4)),
         r"Column 'hours' has missing or infinite values in row 5; .* --dropna"),
        (lambda f: f.assign(funding=f.funding.where(f.index != 0, np.inf)),
         r"Column 'funding' has missing or infinite values in row 1"),
        (lambda f: f.assign(passed=f.passed.where(f.index != 1, 2)),
         r"Column 'passed' \(outcome\) must be 0 or 1 .*row 2 hold 2"),
        (lambda f: f.assign(funding=f.funding.where(f.index != 3, 9.0)),
         r"Column 'funding' \(group-level covariate\) varies within group 's0' \(row 4\)"),
        (lambda f: f.assign(hours=f.groupby("school").funding.transform("first")),
         r"Column 'hours' \(unit-level variable\) never varies within any group"),
        (lambda f: f.assign(school="only"), r"holds 1 group; .* at least 2 groups"),
    ],
)  # fmt: skip
def test_each_problem_is_one_clear_error(change, message):
    with pytest.raises(InputError, match=message) as caught:
        read(change(good_frame()))
    assert "\n" not in str(caught.value)


def test_dropna_drops_and_says_how_many():
    frame = good_frame()
    frame.loc[[1, 5], "hours"] = np.nan
    with pytest.warns(DataWarning, match="Dropped 2 of 24 rows"):
        data = read_data(frame, **COLUMNS, dropna=True)
    assert data.n_units == 22


def test_file_problems(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty\.csv is empty"):
        read(empty)
    with pytest.raises(InputError, match="does not exist"):
        read(tmp_path / "missing.csv")
    other = tmp_path / "data.xlsx"
    other.write_text("x")
    with pytest.raises(InputError, match=r"neither \.csv nor \.parquet"):
        read(other)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="could not be read as PARQUET"):
        read(broken)
    header_only = tmp_path / "header.csv"
    header_only.write_text("school,hours,passed,funding\n")
    with pytest.raises(InputError, match="has no rows"):
        read(header_only)


def test_weak_groups_are_warned_with_counts():
    frame = good_frame(n_groups=3, per_group=2)
    frame.loc[frame.school == "s0", "passed"] = 0
    frame = pd.concat(
        [frame, pd.DataFrame({"school": ["lone"], "hours": [0.3], "passed": [1], "funding": [0.1]})]
    )
    with pytest.warns(DataWarning) as record:
        read_data(frame, **COLUMNS)
    messages = " | ".join(str(w.message) for w in record)
    assert "1 of 4 groups have one unit" in messages
    assert "2 of 4 groups have y all 0 or all 1" in messages  # s0 and the lone group
    assert "prefer the latent Mundlak model" in messages


cell = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 3),
    st.text(max_size=3),
    st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(0, 8),
    data=st.data(),
    drop=st.sampled_from([None, "passed", "hours", "school", "funding"]),
)
def test_malformed_tables_give_a_clean_error_or_valid_data(rows, data, drop):
    frame = pd.DataFrame(
        {name: data.draw(st.lists(cell, min_size=rows, max_size=rows)) for name in COLUMNS.values()}
    )
    if drop:
        frame = frame.drop(columns=drop)
    try:
        result = read(frame)
    except InputError as error:
        assert str(error) and "\n" not in str(error)
    else:  # whatever got through is a valid table
        assert result.n_groups >= 2
        assert set(np.unique(result.y)) <= {0, 1}
        assert np.isfinite(result.x).all() and np.isfinite(result.z).all()
