"""Formulas such as ``"y ~ x1 + x2 + z | group"``: covariates sorted into x and z, clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from groupfx.data.formula import parse_formula
from groupfx.data.reader import DataWarning, read_data
from groupfx.errors import InputError

N_GROUPS, PER_GROUP = 5, 8


@pytest.fixture
def frame() -> pd.DataFrame:
    """Units in string-labelled schools: two unit-level columns, two school-level ones, two categories."""
    rng = np.random.default_rng(4)
    n = N_GROUPS * PER_GROUP
    labels = ["oak", "elm", "ash", "fir", "yew"]  # not in sorted order
    return pd.DataFrame(
        {
            "school": np.repeat(labels, PER_GROUP),
            "hours": rng.normal(size=n),
            "age": rng.uniform(10, 20, size=n),
            "funding": np.repeat(rng.normal(size=N_GROUPS), PER_GROUP),
            "size": np.repeat(rng.uniform(1, 5, size=N_GROUPS), PER_GROUP),
            "income": rng.uniform(1, 10, size=n),
            "kind": np.tile(["p", "q", "r", "p"], n // 4),  # varies within schools
            "region": np.repeat(["a", "b", "c", "a", "b"], PER_GROUP),  # constant within schools
            "passed": np.tile([0, 1], n // 2),
        }
    )


def read(frame: pd.DataFrame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return read_data(frame, **kwargs)


def test_covariates_are_sorted_into_x_and_z_as_with_named_columns(frame):
    formula = "passed ~ hours + funding + age + size | school"
    terms = parse_formula(formula, frame)
    assert terms.y == "passed" and terms.group == "school"
    assert terms.x == ("hours", "age") and terms.z == ("funding", "size")

    by_formula = read(frame, formula=formula)
    by_columns = read(frame, y="passed", x=["hours", "age"], group="school", z=["funding", "size"])
    assert by_formula.x_names == by_columns.x_names == ("hours", "age")
    assert by_formula.z_names == by_columns.z_names == ("funding", "size")
    assert by_formula.names == by_columns.names == {"y": "passed", "group": "school"}
    for attribute in ("y", "x", "group", "z", "group_labels"):
        np.testing.assert_array_equal(getattr(by_formula, attribute), getattr(by_columns, attribute))
    assert by_formula.x.shape == (N_GROUPS * PER_GROUP, 2) and by_formula.z.shape == (N_GROUPS, 2)
    np.testing.assert_allclose(by_formula.x[:, 1], frame["age"])


def test_log_transform_and_categorical_coding(frame):
    data = read(frame, formula="passed ~ np.log(income) + C(kind) + C(region) | school")
    # C() uses reduced-rank coding (first level dropped) and no intercept column is kept
    assert data.x_names == ("np.log(income)", "C(kind)[T.q]", "C(kind)[T.r]")
    assert data.z_names == ("C(region)[T.b]", "C(region)[T.c]")
    assert not any("Intercept" in name for name in data.x_names + data.z_names)
    np.testing.assert_allclose(data.x[:, 0], np.log(frame["income"]))
    np.testing.assert_array_equal(data.x[:, 1], (frame["kind"] == "q").astype(float))
    np.testing.assert_array_equal(data.x[:, 2], (frame["kind"] == "r").astype(float))
    region = frame.groupby("school", sort=True)["region"].first()  # groups are coded in label order
    assert list(region.index) == list(data.group_labels)
    np.testing.assert_array_equal(data.z[:, 0], (region == "b").astype(float))
    np.testing.assert_array_equal(data.z[:, 1], (region == "c").astype(float))


def test_an_interaction_is_one_column(frame):
    data = read(frame, formula="passed ~ hours + hours:age | school")
    assert data.x_names == ("hours", "hours:age") and data.n_z == 0
    np.testing.assert_allclose(data.x[:, 1], frame["hours"] * frame["age"])


def test_string_group_labels_are_kept(frame):
    data = read(frame, formula="passed ~ hours + funding | school")
    assert list(data.group_labels) == ["ash", "elm", "fir", "oak", "yew"]
    np.testing.assert_array_equal(data.group_labels[data.group], frame["school"].to_numpy())
    assert data.names["group"] == "school"


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("passed ~ hours + funding", r"needs an outcome, '~', the covariates, '\|' and the group"),
        ("passed ~ hours | district", r"after '\|' give one column of the table as the group.*'district'"),
        ("passed ~ hours | school + age + hours", r"after '\|' give one column of the table as the group"),
        ("passed + hours ~ age | school", r"its left side must be one numeric column"),
        ("passed ~ 1 | school", r"give at least one covariate before '\|'"),
        ("passed ~ funding + size | school", r"constant within each group, so no within-group effect"),
    ],
)
def test_formula_problems_are_one_line_errors(frame, formula, message):
    with pytest.raises(InputError, match=message) as caught:
        read(frame, formula=formula)
    text = str(caught.value)
    assert "\n" not in text
    assert formula in text  # every formula error quotes the formula


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("passed ~ hours + grade | school", r"no column or function `grade`.*not present in the dataset"),
        ("passed ~ hours + np.log(grade) | school", r"no column or function `np\.log\(grade\)`.*'grade'"),
    ],
)
def test_an_unknown_column_is_named(frame, formula, message):
    with pytest.raises(InputError, match=message) as caught:
        read(frame, formula=formula)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "columns",
    [{"y": "passed"}, {"x": "hours"}, {"group": "school"}, {"z": ["funding"]}],
)
def test_formula_and_columns_together_are_refused(frame, columns):
    with pytest.raises(InputError, match=r"either a formula or the columns .*not both"):
        read(frame, formula="passed ~ hours | school", **columns)
