"""A notebook user is served: short reprs, HTML tables in Jupyter, plots taking one fit or several, and a
DataFrame or a path refused with the call that makes data of it."""

from __future__ import annotations

import pickle
import warnings
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import pytest

import groupfx
from groupfx.data.reader import DataWarning
from groupfx.report import plots


class Tables(HTMLParser):
    """The tables of an HTML fragment, as lists of the rows of their body, each a list of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.headers: list[list[str]] = []
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
            self.headers.append([])
        elif tag == "thead":
            self._in_head = True
        elif tag == "tbody":
            self._in_head = False
        elif tag == "tr" and not self._in_head:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            (self.headers[-1] if self._in_head else self.tables[-1][-1]).append(text)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse_tables(page: str) -> list[tuple[list[str], list[list[str]]]]:
    """``(header cells, body rows)`` of each table in ``page``."""
    parser = Tables()
    parser.feed(page)
    return list(zip(parser.headers, parser.tables, strict=True))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_fit_repr_is_one_short_line_saying_what_it_is(small_fits, small_sim):
    fit = small_fits["mundlak"]
    text = repr(fit)
    assert "\n" not in text and len(text) < 200
    bxy = fit.summary().loc["bxy"]
    expected = (
        f"<Fit Mundlak (mundlak), bernoulli, 200 units in 8 groups, 2 x 60 draws,"
        f" bxy = {bxy['mean']:.2f} [{bxy['hdi_low']:.2f}, {bxy['hdi_high']:.2f}], {len(fit.issues)} issue"
    )
    assert text.startswith(expected) and text.endswith(">")
    assert str(fit) == text


def test_fit_repr_names_every_x(two_x_data):
    with warnings.catch_warnings():  # PSIS-LOO warns about Pareto k with so few draws
        warnings.simplefilter("ignore", UserWarning)
        fit = groupfx.fit(two_x_data, "naive", draws=60, tune=60, chains=2, warn=False)
    text = repr(fit)
    assert text.startswith("<Fit Naive (naive), bernoulli, 200 units in 8 groups, 2 x 60 draws, bxy[x] = ")
    assert ", bxy[x2] = " in text and "\n" not in text


def test_fit_repr_html_is_its_summary_table(small_fits):
    fit = small_fits["mundlak"]
    page = fit._repr_html_()
    assert page.startswith("<p><b>Fit</b>: Mundlak (mundlak), bernoulli")
    ((header, body),) = parse_tables(page)
    columns = ["term", "mean", "sd", "hdi_low", "hdi_high", "r_hat", "ess_bulk", "ess_tail"]
    assert header[1 : 1 + len(columns)] == columns and "parameter" in header
    summary = fit.summary()
    assert [row[0] for row in body] == list(summary.index)
    assert {"bxy", "buy", "bzy", "abar", "tau"} <= {row[0] for row in body}
    bxy = body[[row[0] for row in body].index("bxy")]
    assert float(bxy[2]) == pytest.approx(summary.loc["bxy", "mean"], abs=5e-4)


def test_fit_all_returns_a_picklable_dict_of_fits(small_fits):
    assert isinstance(small_fits, groupfx.Fits) and isinstance(small_fits, dict)
    assert list(small_fits) == ["naive", "fixed", "mundlak"]
    assert repr(small_fits) == "<Fits: 3 models (naive, fixed, mundlak), bernoulli, 200 units in 8 groups>"
    assert small_fits["mundlak"].expected_outcome is not None  # cached on the fit, but never pickled
    again = pickle.loads(pickle.dumps(small_fits))
    assert type(again) is groupfx.Fits and list(again) == list(small_fits)
    assert again["mundlak"].loo.elpd_loo == pytest.approx(small_fits["mundlak"].loo.elpd_loo)
    assert "expected_outcome" not in vars(again["mundlak"])
    assert repr(groupfx.Fits()) == "<Fits: no models>"


def test_fits_repr_html_shows_estimates_and_comparison(small_fits):
    page = small_fits._repr_html_()
    assert page.startswith("<p><b>Fits</b>: 3 models (naive, fixed, mundlak)")
    (estimate_header, estimate_rows), (_, comparison_rows) = parse_tables(page)
    table = groupfx.estimates(small_fits)
    assert len(estimate_rows) == len(table)  # one row per model, parameter and term
    cells = {cell for row in estimate_rows for cell in row}
    assert set(table.model) <= cells and set(table.parameter) <= cells
    assert {"mean", "hdi_low", "hdi_high", "r_hat"} <= set(estimate_header) and "truth" not in estimate_header
    assert [row[0] for row in comparison_rows] == list(groupfx.compare(small_fits).index)
    one = groupfx.Fits(mundlak=small_fits["mundlak"])._repr_html_()
    assert len(parse_tables(one)) == 1 and "PSIS-LOO" not in one


@pytest.mark.parametrize("given", ["fit", "list", "dict", "fits"])
def test_figures_of_several_models_take_one_fit_or_several(small_fits, small_sim, given):
    fit = small_fits["mundlak"]
    shapes = {"fit": fit, "list": [fit], "dict": {"mundlak": fit}, "fits": small_fits}
    labels = [f.label for f in small_fits.values()] if given == "fits" else ["Mundlak"]
    grid = plots.plot_model_grid(shapes[given], small_sim.truth)
    assert [ax.get_ylabel() for ax in grid.axes if ax.get_ylabel()] == labels
    forests = plots.plot_forests(shapes[given], small_sim.truth)
    forest = plots.plot_forest(shapes[given], "bxy", small_sim.truth)
    axes = [ax for ax in forests.axes if ax.get_title()] + [forest.axes[0]]
    assert [ax.get_title() for ax in axes] == ["bxy", "bzy", "bxy"]
    for ax in axes:
        legend = [text.get_text() for text in ax.get_legend().get_texts()]
        # ArviZ names the models in a legend only when there are several; the truth line is always there
        assert legend == ([*labels, "truth"] if len(labels) > 1 else ["truth"])


def test_posterior_figure_takes_one_fit_and_refuses_several(small_fits, small_sim):
    fit = small_fits["mundlak"]
    for given in (fit, [fit], {"mundlak": fit}):
        figure = plots.plot_posteriors(given, small_sim.truth)
        assert figure.get_suptitle() == "Mundlak: posterior"
    with pytest.raises(
        groupfx.InputError,
        match=r"plot_posteriors draws one Fit, got 3 \(naive, fixed, mundlak\); pass one, such as "
        r"fits\['naive'\], or use plot_model_grid for several",
    ):
        plots.plot_posteriors(small_fits)
    with pytest.raises(groupfx.InputError, match=r"plot_posteriors takes a Fit, a list of fits or the dict"):
        plots.plot_posteriors(small_sim)


def test_loo_figure_takes_a_comparison_or_the_fits_and_refuses_one_model(small_fits):
    from_fits = plots.plot_loo_compare(small_fits)
    from_table = plots.plot_loo_compare(groupfx.compare(small_fits))
    for figure in (from_fits, from_table):
        labels = {t.get_text() for t in figure.axes[0].get_yticklabels()}
        assert {"Naive", "Fixed effects", "Mundlak"} <= labels
    one = small_fits["mundlak"]
    for given in (one, groupfx.compare(one)):
        with pytest.raises(groupfx.InputError, match=r"comparison of two or more models, got 1 \(Mundlak\)"):
            plots.plot_loo_compare(given)


def test_something_else_than_fits_is_refused_by_name(small_fits):
    with pytest.raises(groupfx.InputError, match=r"estimates takes fits made by groupfx\.fit or fit_all"):
        groupfx.estimates([small_fits["naive"], "mundlak"])
    with pytest.raises(groupfx.InputError, match=r"compare takes a Fit, .* \(got str\)"):
        groupfx.compare("mundlak")


@pytest.mark.parametrize("function", [groupfx.fit, groupfx.fit_all])
def test_a_dataframe_or_a_path_is_refused_with_the_read_data_call(function, small_sim, tmp_path):
    frame = small_sim.to_frame()
    with pytest.raises(groupfx.InputError) as caught:
        function(frame)
    message = str(caught.value)
    assert "\n" not in message and "DataFrame" in message
    assert "groupfx.read_data(frame, y=..., x=..., group=...)" in message
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    for given in (str(path), path):
        with pytest.raises(groupfx.InputError, match=r"groupfx\.read_data\(path, y=\.\.\., x=\.\.\., group"):
            function(given)
    with pytest.raises(groupfx.InputError, match=r"got dict\); make one with groupfx\.read_data"):
        function({"y": [0, 1]})
    # the call it names works
    with pytest.warns(DataWarning, match="y all 0 or all 1"):
        data = groupfx.read_data(frame, y="y", x="x", group="group", z="z")
    assert isinstance(data, groupfx.GroupedData) and data.n_units == 200
