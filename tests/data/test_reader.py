"""Reading a user's table: every problem is one clear error naming the column, rows and fix."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groupfx.data.grouped import GroupedData
from groupfx.data.reader import DataWarning, read_data
from groupfx.errors import InputError, shown

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


def wide_frame(seed: int = 1) -> pd.DataFrame:
    """The good frame with a second unit-level variable and a second group-level covariate."""
    frame = good_frame(n_groups=5, per_group=6, seed=seed)
    rng = np.random.default_rng(seed + 100)
    frame["sleep"] = rng.normal(7, 1, size=len(frame))
    frame["size"] = frame.school.map({f"s{g}": float(10 * g + 3) for g in range(5)})
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)  # groups interleaved


def read_wide(frame, **columns):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_data(frame, **{"y": "passed", "group": "school"} | columns)


def test_several_x_and_z_keep_their_columns_and_names():
    frame = wide_frame()
    data = read_wide(frame, x=["sleep", "hours"], z=["size", "funding"])
    assert data.x.shape == (30, 2) and data.z.shape == (5, 2)
    assert data.n_x == 2 and data.n_z == 2
    assert data.x_names == ("sleep", "hours") and data.z_names == ("size", "funding")
    np.testing.assert_allclose(data.x, frame[["sleep", "hours"]].to_numpy())
    np.testing.assert_array_equal(data.y, frame.passed)
    assert list(data.group_labels) == [f"s{g}" for g in range(5)]
    means = frame.groupby("school")[["sleep", "hours"]].mean().loc[list(data.group_labels)]
    np.testing.assert_allclose(data.xbar, means.to_numpy())
    per_group = frame.groupby("school")[["size", "funding"]].first().loc[list(data.group_labels)]
    np.testing.assert_allclose(data.z, per_group.to_numpy())
    np.testing.assert_allclose(data.z[:, 0], [3.0, 13.0, 23.0, 33.0, 43.0])
    np.testing.assert_array_equal(data.group_labels[data.group], frame.school)


def test_a_single_name_is_one_column():
    data = read_wide(wide_frame(), x="hours", z="size")
    assert data.x.shape == (30, 1) and data.z.shape == (5, 1)
    assert data.x_names == ("hours",) and data.z_names == ("size",)


def test_no_z_gives_a_model_without_bzy():
    import groupfx

    frame = wide_frame()
    for z in (None, []):
        data = read_wide(frame, x=["hours", "sleep"], z=z)
        assert data.n_z == 0 and data.z.shape == (5, 0) and data.z_names == ()
        model = groupfx.build_model("naive", data)
        assert "bzy" not in model.named_vars and "bxy" in model.named_vars
        assert model["bxy"].eval().shape == (2,)
    with_z = groupfx.build_model("naive", read_wide(frame, x=["hours"], z=["size", "funding"]))
    assert with_z["bzy"].eval().shape == (2,)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"x": ["hours", "size"], "z": ["funding"]},
         r"Column 'size' \(unit-level variable\) never varies within any group.*pass it as --z"),
        ({"x": ["hours"], "z": ["funding", "sleep"]},
         r"Column 'sleep' \(group-level covariate\) varies within group 's\d' \(rows? \d.*--x"),
        ({"x": ["hours"], "z": ["funding", "hours"]}, r"Column 'hours' is given two roles"),
        ({"x": ["hours", "sleep", "hours"]}, r"Column 'hours' is given two roles"),
        ({"x": ["hours", "passed"]}, r"Column 'passed' is given two roles"),
        ({"x": ["hours"], "z": ["school"]}, r"Column 'school' is given two roles"),
        ({"x": ["hours"], "z": ["funding", "budget"]},
         r"Column 'budget' \(group-level covariate\) is not in the table.*--z"),
        ({"x": ["hours", "effort"]}, r"Column 'effort' \(unit-level variable\) is not in the table.*--x"),
    ],
)  # fmt: skip
def test_problems_with_several_columns_name_the_column(columns, message):
    with pytest.raises(InputError, match=message) as caught:
        read_wide(wide_frame(), **columns)
    assert "\n" not in str(caught.value)


corruption = st.sampled_from([np.nan, None, np.inf, -np.inf, "n/a", "", "1,5"])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_x=st.integers(1, 3),
    n_z=st.integers(0, 2),
    n_groups=st.integers(1, 4),
    per_group=st.integers(1, 4),
    corrupt=st.booleans(),
    dropna=st.booleans(),
    data=st.data(),
)
def test_random_tables_with_several_columns_give_valid_data_or_one_clean_error(
    n_x, n_z, n_groups, per_group, corrupt, dropna, data
):
    from hypothesis import event  # labels the two outcomes in --hypothesis-show-statistics

    n = n_groups * per_group
    values = st.floats(-5, 5, allow_nan=False, allow_infinity=False)
    group = np.repeat([f"g{g}" for g in range(n_groups)], per_group)
    frame = pd.DataFrame({"g": group, "y": data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))})
    x = [f"x{k}" for k in range(n_x)]
    z = [f"z{j}" for j in range(n_z)]
    for column in x:
        frame[column] = data.draw(st.lists(values, min_size=n, max_size=n))
    for column in z:
        frame[column] = np.repeat(
            data.draw(st.lists(values, min_size=n_groups, max_size=n_groups)), per_group
        )
    if corrupt:
        column = data.draw(st.sampled_from(list(frame.columns)))
        rows = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=3))
        frame[column] = frame[column].astype(object)
        for row in rows:
            frame.loc[row, column] = data.draw(corruption)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            result = read_data(frame, y="y", x=x, group="g", z=z or None, dropna=dropna)
    except InputError as error:
        event("InputError")
        assert str(error) and "\n" not in str(error)
    else:
        event("valid data")
        assert result.n_x == n_x and result.n_z == n_z
        assert result.x_names == tuple(x) and result.z_names == tuple(z)
        assert result.n_groups >= 2 and result.x.shape == (result.n_units, n_x)
        assert result.z.shape == (result.n_groups, n_z)
        assert set(np.unique(result.y)) == {0, 1}  # both values: an outcome that never varies is refused
        assert np.isfinite(result.x).all() and np.isfinite(result.z).all()
        spread = pd.DataFrame(result.x).groupby(result.group).agg(lambda v: v.max() - v.min())
        assert (spread.to_numpy() > 0).any(axis=0).all()  # every x varies within some group
        if not corrupt:
            assert result.n_units == n


def test_a_repeated_column_name_is_refused_in_every_format(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("school,hours,passed,hours\ns0,1.0,0,2.0\ns0,2.0,1,3.0\ns1,0.5,1,1.0\ns1,1.5,0,2.5\n")
    with pytest.raises(
        InputError, match=r"Column 'hours' appears 2 times in the header of .*d\.csv \(columns 2, 4\)"
    ):
        read_data(csv, y="passed", x="hours", group="school")
    frame = good_frame()
    repeated = pd.concat([frame, frame[["funding"]]], axis=1)
    with pytest.raises(InputError, match=r"Column 'funding' appears 2 times in the columns of the DataFrame"):
        read(repeated)
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "d.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.append_column("school", table.column("school")), parquet)
    with pytest.raises(
        InputError, match=r"Column 'school' appears 2 times in the columns of .*d\.parquet"
    ) as caught:
        read(parquet)
    assert "\n" not in str(caught.value)
    unnamed = tmp_path / "unnamed.csv"  # two empty header cells are unnamed columns, not one name twice
    unnamed.write_text(good_frame().assign(a="", b="").rename(columns={"a": "", "b": ""}).to_csv(index=False))
    assert read(unnamed).n_units == 24


@pytest.mark.parametrize(
    ("family", "change", "extra", "message"),
    [
        ("bernoulli", {"passed": 0}, {}, r"Column 'passed' \(outcome\) is 0 in every row.*both 0s and 1s"),
        ("bernoulli", {"passed": 1}, {}, r"Column 'passed' \(outcome\) is 1 in every row"),
        ("binomial", {"passed": 0}, {"trials": "n"}, r"is 0 in every row.*successes and failures"),
        ("binomial", {"passed": 3, "n": 3}, {"trials": "n"},
         r"Column 'passed' \(outcome\) equals 'n' in every row \(every trial a success\)"),
        ("poisson", {"passed": 0}, {}, r"is 0 in every row.*at least one positive count"),
        ("gaussian", {"passed": 2.5}, {},
         r"Column 'passed' \(outcome\) is 2\.5 in every row.*an outcome that varies"),
    ],
)  # fmt: skip
def test_an_outcome_with_no_variation_for_its_family_is_refused(family, change, extra, message):
    frame = good_frame().assign(**({"n": 4} | change))
    with pytest.raises(InputError, match=message) as caught:
        read(frame, family=family, **extra)
    assert "\n" not in str(caught.value) and "--y" in str(caught.value)


def test_an_outcome_that_varies_only_a_little_is_kept():
    rng = np.random.default_rng(2)
    frame = good_frame().assign(n=4)
    frame["passed"] = 0
    frame.loc[7, "passed"] = 1
    assert read(frame).y.sum() == 1  # one success is information
    frame["passed"] = 3
    assert (
        read(frame, family="poisson").y.sum() == 72
    )  # every count 3: a Poisson rate of 3, nothing degenerate
    frame["passed"] = rng.integers(0, 5, len(frame))
    frame.loc[0, "passed"] = 4
    assert read(frame, family="binomial", trials="n").trials.max() == 4


def test_dropped_rows_count_when_the_outcome_is_checked_for_variation():
    frame = good_frame()
    frame.loc[frame.passed == 1, "hours"] = np.nan  # dropping these leaves y all 0
    with pytest.raises(InputError, match=r"is 0 in every row"):
        read(frame, dropna=True)


def test_messages_show_labels_and_values_as_the_user_wrote_them(tmp_path):
    frame = good_frame()
    frame["school"] = np.repeat([3, 5, 7, 9], 6)  # integer labels: NumPy scalars inside pandas
    frame.loc[8, "funding"] = 99.0  # a z that varies within group 5
    with pytest.raises(InputError, match=r"varies within group 5 \(row 9\)") as caught:
        read(frame)
    assert "np." not in str(caught.value)
    frame = good_frame()
    frame["hours"] = frame.hours.astype(object)
    frame.loc[2, "hours"] = np.str_("lots")
    with pytest.raises(InputError, match=r"row 3 hold 'lots'") as caught:
        read(frame)
    assert "np." not in str(caught.value)
    csv = tmp_path / "d.csv"
    good_frame().assign(passed=lambda f: f.passed.where(f.index != 4, 7)).to_csv(csv, index=False)
    with pytest.raises(InputError, match=r"must be 0 or 1 .*row 5 hold 7\.$"):  # 7 as written, not 7.0
        read(csv)
    with pytest.raises(InputError, match=r"Column 'hours' varies within a group \(rows 1, 2"):  # from 1
        GroupedData.from_frame(good_frame(), y="passed", x="funding", group="school", z="hours")
    with pytest.raises(InputError, match=r"^Unknown family 'normal'"):
        read(good_frame(), family=np.str_("normal"))


@pytest.mark.parametrize("value", [np.int64(3), np.float64(0.5), np.str_("A"), np.bool_(True), 3, "A"])
def test_shown_writes_numpy_scalars_as_python_values(value):
    assert shown(value) == repr(value.item() if isinstance(value, np.generic) else value)
    assert "np." not in shown(value)
