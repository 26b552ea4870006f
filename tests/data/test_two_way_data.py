"""Two-way data: a period factor crossed with the group, read from columns, a formula or a DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import groupfx
from groupfx.data.datasets import load_dataset
from groupfx.data.grouped import GroupedData, two_way_residual
from groupfx.errors import InputError

FORMULA = "lwage ~ married + union + expersq | nr + year"


@pytest.fixture(scope="module")
def wages() -> pd.DataFrame:
    return load_dataset("wage_panel")


def panel(n_groups: int, n_times: int, seed: int, drop: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cells = [(g, t) for g in range(n_groups) for t in range(n_times) if rng.random() >= drop]
    frame = pd.DataFrame(cells, columns=["unit", "year"])
    frame["year"] += 2000
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = frame["x"] + rng.normal(size=len(frame))
    return frame


def test_formula_and_columns_give_the_same_two_way_data(wages):
    by_formula = groupfx.read_data(wages, formula=FORMULA, family="gaussian")
    by_columns = groupfx.read_data(
        wages, y="lwage", x=["married", "union", "expersq"], group="nr", time="year", family="gaussian"
    )
    for data in (by_formula, by_columns):
        assert data.two_way and data.balanced
        assert (data.n_groups, data.n_times, data.n_units) == (545, 8, 4360)
        assert list(data.time_labels) == list(range(1980, 1988))
        assert data.names["time"] == "year"
        np.testing.assert_array_equal(data.time_labels[data.time], wages["year"].to_numpy())
    np.testing.assert_array_equal(by_formula.x, by_columns.x)
    np.testing.assert_array_equal(by_formula.time, by_columns.time)
    # the period column comes back under its name, row for row
    frame = by_formula.to_frame()
    np.testing.assert_array_equal(frame["year"].to_numpy(), wages["year"].to_numpy())


def test_period_summaries_match_pandas():
    frame = panel(12, 5, seed=3, drop=0.3)
    data = groupfx.read_data(frame, y="y", x="x", group="unit", time="year", family="gaussian")
    assert not data.balanced
    np.testing.assert_allclose(data.xbar_time[:, 0], frame.groupby("year").x.mean().to_numpy())
    np.testing.assert_array_equal(data.time_sizes, frame.groupby("year").size().to_numpy())
    dummies = pd.get_dummies(frame.year, dtype=float).iloc[:, 1:]
    shares = dummies.groupby(frame.unit).mean().to_numpy()
    np.testing.assert_allclose(data.period_shares, shares)
    cells = pd.crosstab(frame.unit, frame.year).to_numpy()
    np.testing.assert_array_equal(data.cell_counts, cells)
    # one-way data have none of it
    one_way = groupfx.read_data(frame, y="y", x="x", group="unit", family="gaussian")
    assert not one_way.two_way and one_way.n_times == 0 and one_way.balanced
    assert one_way.period_shares.shape == (12, 0)


def test_two_way_residual_is_the_dummy_regression_residual():
    frame = panel(15, 6, seed=5, drop=0.25)
    group = pd.factorize(frame.unit, sort=True)[0]
    time = pd.factorize(frame.year, sort=True)[0]
    design = np.column_stack(
        [pd.get_dummies(group, dtype=float), pd.get_dummies(time, dtype=float).iloc[:, 1:]]
    )
    values = frame[["x", "y"]].to_numpy()
    coefficients = np.linalg.lstsq(design, values, rcond=None)[0]
    np.testing.assert_allclose(
        two_way_residual(values, group, time), values - design @ coefficients, atol=1e-9
    )


def test_an_x_made_of_a_unit_part_and_a_period_part_is_refused(wages):
    # exper rises by one a year for every man: person part + year part, absorbed by two-way effects
    with pytest.raises(
        InputError, match=r"'exper' \(unit-level variable\) is the sum of a nr part and a year"
    ):
        groupfx.read_data(wages, formula="lwage ~ married + exper | nr + year", family="gaussian")
    # one-way it is identified
    data = groupfx.read_data(wages, formula="lwage ~ married + exper | nr", family="gaussian")
    assert data.x_names == ("married", "exper")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(time="decade"), r"Column 'decade' \(period\) is not in the table"),
        (dict(time="unit"), r"Column 'unit' is given two roles"),
        (dict(time="x"), r"Column 'x' is given two roles"),
    ],
)
def test_period_column_problems_are_one_line_errors(change, message):
    frame = panel(6, 4, seed=1)
    arguments = dict(y="y", x="x", group="unit", family="gaussian") | change
    with pytest.raises(InputError, match=message):
        groupfx.read_data(frame, **arguments)


def test_missing_periods_are_refused_or_dropped():
    frame = panel(6, 4, seed=1)
    frame["year"] = frame["year"].astype(float)
    frame.loc[[2, 7], "year"] = np.nan
    with pytest.raises(InputError, match=r"Column 'year' has missing or infinite values in rows 3, 8"):
        groupfx.read_data(frame, y="y", x="x", group="unit", time="year", family="gaussian")
    with pytest.warns(groupfx.data.reader.DataWarning, match="Dropped 2 of 24 rows"):
        data = groupfx.read_data(
            frame, y="y", x="x", group="unit", time="year", family="gaussian", dropna=True
        )
    assert data.n_units == 22 and data.n_times == 4


def test_one_period_is_refused():
    frame = panel(6, 1, seed=1)
    with pytest.raises(InputError, match=r"'year' \(period\) holds one value.*drop --time"):
        groupfx.read_data(frame, y="y", x="x", group="unit", time="year", family="gaussian")


def test_formula_and_time_must_agree(wages):
    same = groupfx.read_data(wages, formula=FORMULA, family="gaussian", time="year")
    assert same.names["time"] == "year"
    with pytest.raises(InputError, match=r"formula names 'year' as the period and --time names 'nr'"):
        groupfx.read_data(wages, formula=FORMULA, family="gaussian", time="nr")
    # a formula without a period takes it from time=
    data = groupfx.read_data(wages, formula="lwage ~ married + union | nr", family="gaussian", time="year")
    assert data.two_way and data.n_times == 8


def test_grouped_data_checks_the_period_codes():
    base = dict(y=np.zeros(4), x=np.arange(4.0), group=np.array([0, 0, 1, 1]), z=np.zeros((2, 0)),
                group_labels=np.array(["a", "b"]))  # fmt: skip
    with pytest.raises(InputError, match="together"):
        GroupedData(**base, time=np.array([0, 1, 0, 1]))
    with pytest.raises(InputError, match="Period codes"):
        GroupedData(**base, time=np.array([0, 1, 0, 2]), time_labels=np.array([1, 2]))
    data = GroupedData(**base, time=np.array([0, 1, 0, 1]), time_labels=np.array([1, 2]))
    assert data.two_way and data.balanced and data.n_times == 2
