"""Malformed tables and priors files given to ``groupfx fit``: exit 2, one line, no traceback, nothing
written.

Hypothesis builds each case from a valid table (one defect at a time: a missing column, a value that is not a
number, a repeated header, an outcome that never varies...) or a valid table with a malformed priors file,
and runs ``groupfx.cli.main`` in this process; a fixed list of the cases runs as real subprocesses too. Every
case names ``--models naive`` and tiny draws, so that a defect validation let through would fail the test in
seconds (the fit runs and writes its report) rather than hang it.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import groupfx
from groupfx.cli import main
from groupfx.data.reader import DataWarning, read_data
from groupfx.models.priors import DEFAULT_PRIORS, SCALE_PARAMETERS, load_priors

LABELS = (11, 12, 13, 14)
"""Integer group labels: pandas holds them as NumPy scalars, which no message may show as np.int64(...)."""
PER_GROUP = 6
FAMILY_COLUMNS = {
    "bernoulli": ["--y", "y"],
    "binomial": ["--y", "s", "--trials", "n"],
    "poisson": ["--y", "c", "--exposure", "w"],
    "gaussian": ["--y", "v"],
}
"""The outcome columns of each family in the base table, as command-line arguments."""
OUTCOME = {"bernoulli": "y", "binomial": "s", "poisson": "c", "gaussian": "v"}
TINY = ["--models", "naive", "--draws", "5", "--tune", "5", "--chains", "1", "--cores", "1", "--seed", "1"]


def base_frame() -> pd.DataFrame:
    """A valid table for every family: group, x (varies within groups), z (constant within), and outcomes."""
    rng = np.random.default_rng(5)
    group = np.repeat(LABELS, PER_GROUP)
    n = group.size
    z = np.repeat(rng.normal(size=len(LABELS)).round(3), PER_GROUP)
    trials = rng.integers(1, 6, n)
    return pd.DataFrame(
        {
            "group": group,
            "x": rng.normal(size=n).round(3),
            "z": z,
            "y": np.tile([0, 1, 1], n // 3),
            "s": np.minimum(trials, np.tile([0, 1, 2], n // 3)),
            "n": trials,
            "c": rng.poisson(2.0, n),
            "w": rng.uniform(0.5, 2.0, n).round(3),
            "v": rng.normal(size=n).round(3),
        }
    )


def used_columns(family: str) -> list[str]:
    return ["group", "x", "z", *FAMILY_COLUMNS[family][1::2]]


@dataclass
class Case:
    """One run of ``groupfx fit``: the files to write, the arguments, and what the error must say."""

    files: dict[str, str | bytes | pd.DataFrame]
    arguments: list[str]
    expect: str
    data: str = "table.csv"
    kind: str = ""
    columns: list[str] = field(default_factory=lambda: ["--x", "x", "--group", "group", "--z", "z"])

    def __repr__(self) -> str:  # the files by name and size: a table in full says nothing in a report
        files = {name: len(content) for name, content in self.files.items()}
        return f"Case(files={files}, data={self.data!r}, arguments={self.columns + self.arguments})"

    def argv(self, folder: Path) -> list[str]:
        """The command line of ``groupfx fit`` on the files in ``folder``, its report to ``folder/out``."""
        priors = ["--priors", str(folder / "priors.toml")] if "priors.toml" in self.files else []
        data, out = str(folder / self.data), str(folder / "out")
        return ["fit", data, *self.columns, *self.arguments, *priors, "--out", out, *TINY]

    def write(self, folder: Path) -> None:
        for name, content in self.files.items():
            path = folder / name
            if isinstance(content, pd.DataFrame):
                if name.endswith(".parquet"):
                    content.to_parquet(path, index=False)
                else:
                    content.to_csv(path, index=False)
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")


def table_case(family: str, frame: pd.DataFrame, expect: str, fmt: str = "csv", extra=()) -> Case:
    name = f"table.{fmt}"
    return Case({name: frame}, [*FAMILY_COLUMNS[family], "--family", family, *extra], expect, data=name)


# ----------------------------------------------------------------------------------------------------------
# malformed tables


def repeated_header(family: str, repeated: str, renamed: str) -> Case:
    frame = base_frame()
    header = [repeated if column == renamed else column for column in frame.columns]
    text = ",".join(header) + "\n" + frame.to_csv(index=False, header=False)
    case = table_case(family, frame, rf"Column '{repeated}' appears 2 times in the header")
    case.files = {"table.csv": text}
    return case


def constant_outcome(family: str, value: float | None = None) -> Case:
    frame = base_frame()
    column = OUTCOME[family]
    if family == "binomial" and value is None:
        frame["s"] = frame["n"]  # every trial a success
        return table_case(family, frame, r"equals 'n' in every row")
    frame[column] = 0 if value is None else value
    return table_case(family, frame, rf"Column '{column}' \(outcome\) is .* in every row")


def z_varies(family: str, row: int) -> Case:
    frame = base_frame()
    frame.loc[row, "z"] += 1.0
    label = LABELS[row // PER_GROUP]
    return table_case(family, frame, rf"Column 'z' \(group-level covariate\) varies within group {label} ")


@st.composite
def table_cases(draw) -> Case:
    """A valid table with one defect, of each kind."""
    kind = draw(
        st.sampled_from(
            ["missing column", "not a number", "missing value", "infinite value", "repeated header", "empty",
             "one group", "constant outcome", "z varies", "x constant within groups", "wrong outcome value",
             "bad trials", "bad exposure", "option of another family", "two roles", "bad formula",
             "no such file", "not a table file"]
        )
    )  # fmt: skip
    case = _table_case(draw, kind)
    case.kind = kind
    return case


def _table_case(draw, kind: str) -> Case:
    family = draw(st.sampled_from(list(FAMILY_COLUMNS)))
    frame = base_frame()
    used = used_columns(family)
    numeric = [column for column in used if column != "group"]
    row = draw(st.integers(0, len(frame) - 1))
    fmt = draw(st.sampled_from(["csv", "parquet"]))
    if kind == "missing column":
        column = draw(st.sampled_from(used))
        return table_case(
            family, frame.drop(columns=column), rf"Column '{column}' .*is not in the table", fmt
        )
    if kind == "not a number":
        column = draw(st.sampled_from(numeric))
        word = "q" + draw(st.text(alphabet="abcdefghij,;-", max_size=4))  # never one of pandas' NA words
        frame[column] = frame[column].astype(str)
        frame.loc[row, column] = word
        return table_case(family, frame, rf"Column '{column}' .*is not numeric: row {row + 1} hold '", fmt)
    if kind == "missing value":
        column = draw(st.sampled_from(used))
        frame[column] = frame[column].astype(float)
        frame.loc[row, column] = np.nan
        return table_case(
            family, frame, rf"Column '{column}' has missing or infinite values in row {row + 1};", fmt
        )
    if kind == "infinite value":
        column = draw(st.sampled_from(numeric))
        frame[column] = frame[column].astype(float)
        frame.loc[row, column] = draw(st.sampled_from([np.inf, -np.inf]))
        return table_case(
            family, frame, rf"Column '{column}' has missing or infinite values in row {row + 1};", fmt
        )
    if kind == "repeated header":
        repeated = draw(st.sampled_from(used))
        renamed = draw(st.sampled_from([c for c in frame.columns if c != repeated]))
        return repeated_header(family, repeated, renamed)
    if kind == "empty":
        text, expect = draw(
            st.sampled_from(
                [("", r"is empty"), (",".join(frame.columns) + "\n", r"has no rows"),
                 ("\n\n", r"could not be read as CSV|is empty|has no rows")]
            )
        )  # fmt: skip
        case = table_case(family, frame, expect)
        case.files = {"table.csv": text}
        return case
    if kind == "one group":
        frame["group"] = LABELS[0]
        return table_case(family, frame, r"Column 'group' holds 1 group; .*at least 2 groups", fmt)
    if kind == "constant outcome":
        value = draw(st.floats(-1e6, 1e6, allow_nan=False)) if family == "gaussian" else None
        case = constant_outcome(family, value)
        return table_case(family, case.files["table.csv"], case.expect, fmt)
    if kind == "z varies":
        case = z_varies(family, row)
        return table_case(family, case.files["table.csv"], case.expect, fmt)
    if kind == "x constant within groups":
        frame["x"] = frame["group"] * draw(st.sampled_from([0.5, -2.0, 1.0]))
        return table_case(
            family, frame, r"Column 'x' \(unit-level variable\) never varies within any group", fmt
        )
    if kind == "wrong outcome value":
        family = draw(st.sampled_from(["bernoulli", "binomial", "poisson"]))
        column = OUTCOME[family]
        frame[column] = frame[column].astype(float)
        if family == "bernoulli":
            frame.loc[row, column] = draw(st.sampled_from([2, -1, 0.5, 3]))
            expect = r"must be 0 or 1 for the Bernoulli family"
        elif family == "binomial":
            frame.loc[row, column] = draw(st.sampled_from([-1, 1.5, float(frame.loc[row, "n"] + 1)]))
            expect = r"must be a non-negative integer count of successes|exceeds 'n'"
        else:
            frame.loc[row, column] = draw(st.sampled_from([-1, 2.5, -0.5]))
            expect = r"must be a non-negative integer count for the Poisson family"
        return table_case(family, frame, rf"Column '{column}' \(outcome\) .*{expect}", fmt)
    if kind == "bad trials":
        frame["n"] = frame["n"].astype(float)
        frame.loc[row, "n"] = draw(st.sampled_from([0, -2, 1.5]))
        return table_case(
            "binomial", frame, r"Column 'n' \(number of trials\) must hold positive integers", fmt
        )
    if kind == "bad exposure":
        frame.loc[row, "w"] = draw(st.sampled_from([0.0, -1.0, -0.25]))
        return table_case("poisson", frame, r"Column 'w' \(exposure\) must be positive", fmt)
    if kind == "option of another family":
        option, other = draw(
            st.sampled_from(
                [(["--trials", "n"], "bernoulli"), (["--trials", "n"], "poisson"),
                 (["--exposure", "w"], "gaussian"), (["--exposure", "w"], "bernoulli")]
            )
        )  # fmt: skip
        case = table_case(other, frame, r"is used by the (binomial|poisson) family only", fmt, extra=option)
        if draw(st.booleans()):  # or the binomial family without its trials
            case = table_case("binomial", frame, r"needs the number of trials", fmt)
            case.arguments = ["--y", "s", "--family", "binomial"]
        return case
    if kind == "two roles":
        column = draw(st.sampled_from(["x", "z", "group"]))
        case = table_case(family, frame, rf"Column '{column}' is given two roles", fmt)
        case.columns = [*case.columns, *(["--x", column] if column != "x" else ["--z", "x"])]
        return case
    if kind == "bad formula":
        formula = draw(
            st.sampled_from(
                [f"{OUTCOME[family]} ~ x + z", f"{OUTCOME[family]} ~ nothere + x | group", "~ x | group",
                 f"{OUTCOME[family]} ~ x | nothere", f"{OUTCOME[family]} ~ x + (| group"]
            )
        )  # fmt: skip
        case = table_case(family, frame, r"Cannot read the formula", fmt)
        case.arguments = ["--formula", formula, *case.arguments[2:]]
        case.columns = []
        return case
    if kind == "no such file":
        case = table_case(family, frame, r"does not exist or is not a file")
        case.files, case.data = {}, "absent.csv"
        return case
    case = table_case(family, frame, r"is neither \.csv nor \.parquet")
    case.files, case.data = {"table.txt": frame.to_csv(index=False)}, "table.txt"
    return case


# ----------------------------------------------------------------------------------------------------------
# malformed priors files

VALID = {
    "Normal": {"mu": 0, "sigma": 1},
    "HalfNormal": {"sigma": 1},
    "Exponential": {"lam": 1},
    "StudentT": {"nu": 3, "mu": 0, "sigma": 1},
    "HalfStudentT": {"nu": 3, "sigma": 1},
    "Cauchy": {"alpha": 0, "beta": 1},
    "HalfCauchy": {"beta": 1},
    "Gamma": {"alpha": 2, "beta": 1},
    "InverseGamma": {"alpha": 3, "beta": 1},
    "LogNormal": {"mu": 0, "sigma": 1},
    "Laplace": {"mu": 0, "b": 1},
    "TruncatedNormal": {"mu": 0, "sigma": 1, "lower": 0},
    "Beta": {"alpha": 2, "beta": 2},
    "Weibull": {"alpha": 2, "beta": 1},
}
"""Valid arguments of each distribution: a case breaks one of them."""
POSITIVE = {
    "Normal": ["sigma"], "HalfNormal": ["sigma"], "Exponential": ["lam"], "StudentT": ["nu", "sigma"],
    "HalfStudentT": ["nu", "sigma"], "Cauchy": ["beta"], "HalfCauchy": ["beta"], "Gamma": ["alpha", "beta"],
    "InverseGamma": ["alpha", "beta"], "LogNormal": ["sigma"], "Laplace": ["b"], "TruncatedNormal": ["sigma"],
    "Beta": ["alpha", "beta"], "Weibull": ["alpha", "beta"],
}  # fmt: skip
"""The arguments of each distribution that must be positive."""
REAL_LINE = ["Normal", "StudentT", "Cauchy", "Laplace"]
SCALES = list(SCALE_PARAMETERS)
GOOD_FIRST = "abar"
"""The parameter of the valid table some files hold before the bad one; no bad table names it."""
LOCATIONS = [name for name in DEFAULT_PRIORS if name not in SCALES and name != GOOD_FIRST]


def toml_table(name: str, distribution: str, arguments: dict[str, object]) -> str:
    lines = [f"[{name}]", f'distribution = "{distribution}"']
    lines += [f"{key} = {value}" for key, value in arguments.items()]  # values are TOML text already
    return "\n".join(lines) + "\n"


def priors_case(text: str, expect: str, family: str = "bernoulli") -> Case:
    case = table_case(family, base_frame(), expect)
    case.files["priors.toml"] = text
    return case


def negative_scale(name: str) -> Case:
    expect = rf"^Prior of {name} \(\[{name}\] in .*\): sigma must be positive \(got -1\)"
    return priors_case(toml_table(name, "HalfNormal", {"sigma": -1}), expect)


def real_line_scale(name: str, distribution: str) -> Case:
    return priors_case(toml_table(name, distribution, VALID[distribution]),
                       rf"^Prior of {name} \(.*\): .* allows negative values, but {name} is")  # fmt: skip


bad_number = st.one_of(
    st.floats(max_value=0, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["0", "-1", "inf", "-inf", "nan", "+inf", "-nan"]),
)
"""TOML text of a value no positive argument may take."""
not_a_number = st.sampled_from(['"one"', '""', "true", "false", "[1, 2]", "{ a = 1 }", "1979-05-27"])
"""TOML text of a value that is not a number."""


@st.composite
def priors_cases(draw) -> Case:
    """A valid table with a priors file with one defect, of each kind."""
    kind = draw(
        st.sampled_from(
            ["bad toml", "unknown parameter", "unknown distribution", "no distribution", "out of domain",
             "not a number", "not finite", "wrong support", "unknown argument", "discrete", "improper",
             "order"]
        )
    )  # fmt: skip
    case = _priors_case(draw, kind)
    case.kind = kind
    return case


def _priors_case(draw, kind: str) -> Case:
    prefix = ""
    if draw(st.booleans()):  # a valid table before the bad one: the bad one is still found, before any fit
        prefix = toml_table(GOOD_FIRST, "Normal", {"mu": 0.5, "sigma": 2})
    name = draw(st.sampled_from(LOCATIONS))
    if kind == "bad toml":
        text = draw(st.sampled_from(["[bxy\n", "[bxy]\ndistribution = Normal\n", "[bxy]\nsigma = = 1\n",
                                     "[bxy]\n[bxy]\n", "distribution\n",
                                     "[bxy]\nmu = 0\nmu = 1\n"]))  # fmt: skip
        return priors_case(prefix + text, r"^Priors file .*priors\.toml is not valid TOML")
    if kind == "unknown parameter":
        unknown = draw(
            st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).map(
                lambda s: f"{s}_x" if s in DEFAULT_PRIORS else s
            )
        )
        return priors_case(prefix + toml_table(unknown, "Normal", VALID["Normal"]),
                           rf"No model has a parameter '{unknown}'")  # fmt: skip
    if kind == "unknown distribution":
        distribution = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,10}", fullmatch=True))
        found = getattr(pm, distribution, None)
        if isinstance(found, type) and issubclass(found, pm.Distribution):
            distribution = distribution + "Prior"  # no PyMC distribution has that name
        return priors_case(prefix + toml_table(name, distribution, {"mu": 0}),
                           rf"'{distribution}' is not a PyMC distribution")  # fmt: skip
    if kind == "no distribution":
        text = draw(
            st.sampled_from([f"[{name}]\nmu = 0\nsigma = 1\n", f"{name} = 1\n", f'{name} = "Normal"\n'])
        )
        return priors_case(text + prefix, rf"\[{name}\] in .*priors\.toml must be a table with distribution")
    distribution = draw(st.sampled_from(list(VALID)))
    if distribution not in REAL_LINE:  # a positive distribution may serve a scale too
        name = draw(st.sampled_from(LOCATIONS + SCALES))
    arguments = dict(VALID[distribution])
    where = rf"^Prior of {name} \(\[{name}\] in .*priors\.toml\): "
    if kind == "out of domain":
        argument = draw(st.sampled_from(POSITIVE[distribution]))
        arguments[argument] = draw(bad_number)
        return priors_case(prefix + toml_table(name, distribution, arguments),
                           where + rf"{argument} must be (positive|a finite number) \(got ")  # fmt: skip
    if kind == "not a number":
        argument = draw(st.sampled_from(list(arguments)))
        arguments[argument] = draw(not_a_number)
        return priors_case(
            prefix + toml_table(name, distribution, arguments), where + rf"{argument} must be a number"
        )
    if kind == "not finite":
        argument = draw(st.sampled_from(list(arguments)))
        arguments[argument] = draw(st.sampled_from(["inf", "-inf", "nan", "+nan"]))
        return priors_case(prefix + toml_table(name, distribution, arguments),
                           where + rf"{argument} must be a finite number \(got (-?inf|nan)\)")  # fmt: skip
    if kind == "wrong support":
        scale = draw(st.sampled_from(SCALES))
        support = draw(st.sampled_from([*REAL_LINE, "Uniform", "TruncatedNormal"]))
        arguments = {"Uniform": {"lower": -1, "upper": 1}, "TruncatedNormal": {"mu": 1, "sigma": 1}}.get(
            support, VALID.get(support)
        )
        family = "gaussian" if scale == "sigma_y" else "bernoulli"
        return priors_case(prefix + toml_table(scale, support, arguments),
                           rf"^Prior of {scale} \(.*\): .* allows negative values, but {scale} is .*"
                           r"HalfNormal",
                           family)  # fmt: skip
    if kind == "unknown argument":
        argument = draw(st.sampled_from(["mean", "sd", "scale_", "self", "shape_", "rate"]))
        arguments[argument] = 1
        return priors_case(
            prefix + toml_table(name, distribution, arguments), where + r".* is not a valid prior \("
        )
    if kind == "discrete":
        discrete = draw(
            st.sampled_from([("Poisson", {"mu": 1}), ("Bernoulli", {"p": 0.5}), ("DiscreteUniform", {})])
        )
        return priors_case(prefix + toml_table(name, *discrete), where + rf"{discrete[0]} is discrete")
    if kind == "improper":
        improper = draw(st.sampled_from(["Flat", "HalfFlat"]))
        return priors_case(prefix + toml_table(name, improper, {}), where + rf"{improper} is improper")
    lower = draw(st.floats(-10, 10, allow_nan=False))
    upper = lower - draw(st.floats(0, 5, allow_nan=False))  # upper <= lower
    return priors_case(prefix + toml_table(name, "Uniform", {"lower": repr(lower), "upper": repr(upper)}),
                       where + r"lower must be below upper")  # fmt: skip


# ----------------------------------------------------------------------------------------------------------
# the checks


def place(case: Case, folder: Path) -> list[str]:
    """Write the case's files into ``folder``; return its command line."""
    case.write(folder)
    return case.argv(folder)


def assert_refused(case: Case, folder: Path, code: int, stdout: str, stderr: str) -> None:
    assert code == 2, f"exit {code} for {case}: {stderr[-2000:]}"
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("groupfx: error: "), stderr
    message = lines[0].removeprefix("groupfx: error: ")
    assert re.search(case.expect, message), f"{message!r} does not match {case.expect!r}"
    assert "np." not in message and "numpy" not in message
    assert stdout == ""
    assert not (folder / "out").exists()
    assert sorted(os.listdir(folder)) == sorted(case.files), "a file was written next to the input"


EXAMPLES = int(os.environ.get("GROUPFX_PROPERTY_EXAMPLES", "90"))
"""Examples per run (set GROUPFX_PROPERTY_EXAMPLES=1000 for a long search); each takes milliseconds."""


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=st.one_of(table_cases(), priors_cases()))
def test_a_malformed_input_stops_groupfx_fit_with_one_line_and_nothing_written(
    capsys, tmp_path_factory, case
):
    event(case.kind)
    capsys.readouterr()  # one capsys serves every example: start each with nothing captured
    folder = tmp_path_factory.mktemp("case")
    pymc_logging = logging.getLogger("pymc").level
    try:
        code = main(place(case, folder))
    finally:  # main quiets PyMC's logger for the terminal; the other tests get it back as it was
        logging.getLogger("pymc").setLevel(pymc_logging)
    captured = capsys.readouterr()
    assert_refused(case, folder, code, captured.out, captured.err)


def package_env() -> dict[str, str]:
    """The environment with this groupfx first on the path: a subprocess run elsewhere imports this copy."""
    source = str(Path(groupfx.__file__).resolve().parents[1])
    return os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}


FIXED = {
    "repeated header": repeated_header("bernoulli", "x", "w"),
    "outcome all 0": constant_outcome("bernoulli"),
    "z varies within an integer-labelled group": z_varies("poisson", 14),
    "negative scale": negative_scale("sigma_y"),
    "Normal prior for tau": real_line_scale("tau", "Normal"),
}
"""Cases run as real subprocesses, as a user runs groupfx."""


@pytest.mark.parametrize("case", FIXED.values(), ids=FIXED.keys())
def test_a_malformed_input_stops_the_groupfx_command(tmp_path, case):
    command = [sys.executable, "-m", "groupfx.cli", *place(case, tmp_path)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=package_env()
    )
    assert_refused(case, tmp_path, result.returncode, result.stdout, result.stderr)


def test_the_base_table_and_a_good_priors_file_are_valid(tmp_path):
    """Each case holds one defect: without it the table and the priors pass validation."""
    frame = base_frame()
    for family, arguments in FAMILY_COLUMNS.items():
        columns = dict(zip([a.removeprefix("--") for a in arguments[::2]], arguments[1::2], strict=True))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataWarning)
            data = read_data(frame, x="x", group="group", z="z", family=family, **columns)
        assert data.n_units == len(frame) and list(data.group_labels) == list(LABELS)
    good = "".join(toml_table(name, "Normal", VALID["Normal"]) for name in [*LOCATIONS, GOOD_FIRST])
    good += "".join(toml_table(name, "HalfNormal", VALID["HalfNormal"]) for name in SCALES)
    path = tmp_path / "priors.toml"
    path.write_text(good, encoding="utf-8")
    assert set(load_priors(path)) == set(DEFAULT_PRIORS)
    for distribution, arguments in VALID.items():
        path.write_text(toml_table("bxy", distribution, arguments), encoding="utf-8")
        assert load_priors(path)["bxy"].distribution == distribution
