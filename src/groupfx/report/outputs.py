"""Everything a study writes: report, figures, tables, draws, data, in one folder written atomically."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path

import pandas as pd
import pymc as pm

from groupfx.data.grouped import GroupedData
from groupfx.data.simulate import SimulatedData, generative_model
from groupfx.engines.sampling import mass_matrix_text
from groupfx.models.graphs import GraphFile, write_graph
from groupfx.report import plots
from groupfx.report.drawing import draw_figures
from groupfx.report.effect_section import effect_section
from groupfx.report.html import render_report, write_html
from groupfx.results.crosscheck import side_by_side, within_for
from groupfx.results.fits import Fit, as_fit_list, compare, estimates, mundlak_effects
from groupfx.util.files import atomic_directory, atomic_path, claim_output_folder

CAUSAL_TEXT = (
    "The data come from this graph with the truth set by do(): a group-level cause U (unobserved) drives "
    "both x and y, so comparing units across groups confounds the effect of x; z is an observed "
    "group-level cause of y."
)
TIME_CAUSAL_TEXT = (
    " A period-level cause V (unobserved, one shock per period) drives x and y as well, so comparing units "
    "within a group confounds the effect of x too, unless the periods are accounted for."
)


def write_csv(frame: pd.DataFrame, path: Path, **kwargs: object) -> Path:
    """Write a CSV atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)
    return path


def run_table(fits: Sequence[Fit]) -> pd.DataFrame:
    """One row per fit: divergences, diagnostics issues, seconds compiling, sampling and on LOO, elpd."""
    return pd.DataFrame(
        {
            "model": [fit.label for fit in fits],
            "divergences": [fit.divergences for fit in fits],
            "diagnostic_issues": [len(fit.issues) for fit in fits],
            "compile_s": [fit.timings.get("compile") for fit in fits],
            "sample_s": [fit.timings.get("sample") for fit in fits],
            "loo_s": [fit.timings.get("loo") for fit in fits],
            "elpd_loo": [fit.loo.elpd_loo for fit in fits],
            "sampler_seed": [fit.seed for fit in fits],
        }
    )


def _target_accept_text(fits: Sequence[Fit]) -> str:
    """``", target acceptance 0.8"`` where every fit used one, else each model's; empty where none says."""
    used = [(fit.label, fit.idata.sample_stats.attrs.get("target_accept")) for fit in fits]
    used = [(label, value) for label, value in used if value is not None]
    if not used:
        return ""
    if len({value for _, value in used}) == 1:
        return f", target acceptance {used[0][1]:g}"
    return ", target acceptance " + ", ".join(f"{label} {value:g}" for label, value in used)


def causal_graph(simulated: SimulatedData) -> pm.Model:
    """The simulation's generative model with the truth set by ``do()`` (for its graph)."""
    settings, data = simulated.settings, simulated.data
    periods = (
        {"time": data.time, "n_times": data.n_times, "time_sd": settings.time_sd, "bvx": settings.bvx,
         "bvy": settings.bvy}
        if data.two_way
        else {}
    )  # fmt: skip
    return pm.do(
        generative_model(data.group, data.n_groups, settings.u_sd, settings.u_mean, **periods), settings.truth
    )


def write_report(
    fits: Fit | Mapping[str, Fit] | Sequence[Fit],
    out_dir: str | Path,
    *,
    simulated: SimulatedData | None = None,
    title: str = "groupfx report",
    intro: str = "",
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write the report and every file behind it into ``out_dir``.

    The folder gets ``report.html`` (self-contained), ``figures/*.png`` (and model graphs),
    ``estimates.csv``, ``loo.csv``, ``fits.csv`` (timings and diagnostics per model),
    ``mundlak_effects.csv`` (within, contextual and between effects, when a Mundlak model is fitted),
    ``crosscheck.csv`` (the frequentist within estimate of each x, :mod:`groupfx.results.crosscheck`),
    ``effects.csv`` (the contrast of raising each x by one on the outcome scale, per group and on average),
    ``data.csv``, ``idata/<model>.nc`` and the marker :data:`.files.MARKER` that makes it a groupfx
    report folder. It is written beside ``out_dir`` and moved into place only when complete, so a failure
    leaves no half-written folder.

    ``out_dir`` must not exist yet, or be empty, or be a report folder groupfx wrote before (it is then
    replaced); anything else is refused before any work (see :func:`groupfx.util.files.check_output_folder`),
    and so is a folder another run is writing.

    Parameters
    ----------
    fits : Fit, mapping or sequence of Fit
        The fits to report, in order. With one fit the report has no comparison table or figure and
        no LOO ranking (``loo.csv`` is the one row of :func:`groupfx.compare`); every other part is as usual.
    out_dir : str or pathlib.Path
        Destination folder (a groupfx report folder there is replaced).
    simulated : SimulatedData, optional
        The simulation the fits came from: adds the truth, the confounder and the causal graph.
    title, intro : str
        Heading and opening paragraph of the report.
    progress : callable, optional
        Called with a short description as each part is written.

    Returns
    -------
    pathlib.Path
        The report's path.

    Raises
    ------
    InputError
        If ``out_dir`` may not be written (see above).
    """
    fits = as_fit_list(fits, "write_report")
    data: GroupedData = fits[0].data
    truth = simulated.truth if simulated is not None else None
    say = progress or (lambda step: None)
    out_dir = Path(out_dir)
    with claim_output_folder(out_dir, "report"), atomic_directory(out_dir, kind="report") as tmp:
        say("tables")
        within = within_for(data, fits[0].family)
        table = estimates(fits, truth, within=within)
        comparison = compare(fits)
        write_csv(within, tmp / "crosscheck.csv", index=False)
        # on the user's own data there is no truth: its columns are left out rather than left empty
        shown = table if truth else table.drop(columns=["truth", "covers_truth"])
        write_csv(shown, tmp / "estimates.csv", index=False)
        write_csv(run_table(fits), tmp / "fits.csv", index=False)
        decomposition = mundlak_effects(fits)
        if not decomposition.empty:
            write_csv(decomposition, tmp / "mundlak_effects.csv", index=False)
        write_csv(comparison, tmp / "loo.csv")
        frame = simulated.to_frame() if simulated is not None else data.to_frame()
        write_csv(frame, tmp / "data.csv", index=False)

        say("effects and checks")
        section = effect_section(fits, simulated)
        write_csv(section.effects, tmp / "effects.csv", index=False)

        fig_dir = tmp / "figures"
        fig_dir.mkdir()
        graphs: dict[str, GraphFile] = {}

        def files_beside_the_figures() -> None:  # written while the figures are drawn in other processes
            say("posterior draws and model graphs")
            for fit in fits:
                fit.to_netcdf(tmp / "idata" / f"{fit.model}.nc")
            if simulated is not None:
                graphs["causal"] = write_graph(causal_graph(simulated), fig_dir / "graph_causal", "causal")
            for fit in fits:
                graphs[fit.model] = write_graph(fit.pymc_model(), fig_dir / f"graph_{fit.model}", fit.label)

        say("figures")
        drawings = {
            "group_counts": lambda: plots.plot_group_counts(data),
            "x_by_group": lambda: plots.plot_x_by_group(data),
            "y_by_x": lambda: plots.plot_y_by_x(data),
            **(
                {"causal_dag": lambda: plots.plot_causal_dag(truth, simulated.settings.u_sd)}
                if simulated is not None
                else {}
            ),
            **{f"posterior_{fit.model}": partial(plots.plot_posteriors, fit, truth) for fit in fits},
            "model_grid": lambda: plots.plot_model_grid(fits, truth),
            "forest": lambda: plots.plot_forests(fits, truth),
            **({"loo_compare": lambda: plots.plot_loo_compare(comparison)} if len(fits) > 1 else {}),
            **section.drawings(),
        }
        paths = draw_figures(drawings, fig_dir, meanwhile=files_beside_the_figures)

        say("report")
        settings = fits[0].settings
        settings_text = (
            f"Sampler: nutpie, {settings.chains} chains x ({settings.tune} tuning + {settings.draws} draws), "
            f"{mass_matrix_text(settings)}, {settings.backend} backend"
            f" ({fits[0].idata.sample_stats.attrs.get('device', 'cpu')}){_target_accept_text(fits)}, seed "
            f"{settings.seed}. Total time compiling {sum(f.timings.get('compile', 0) for f in fits):.1f} s, "
            f"sampling {sum(f.timings.get('sample', 0) for f in fits):.1f} s, "
            f"LOO {sum(f.timings.get('loo', 0) for f in fits):.1f} s."
        )
        if simulated is not None:
            s = simulated.settings
            settings_text += (
                f" Simulation: {s.n_groups} groups, {s.n_units} units, a0 = {s.a0:g}, bxy = {s.bxy:g}, "
                f"bzy = {s.bzy:g}, U ~ Normal(0, {s.u_sd:g}), seed {s.seed}."
            )
            if s.two_way:
                settings_text += (
                    f" Periods: {s.n_periods}, V ~ Normal(0, {s.time_sd:g}), V → x {s.bvx:g},"
                    f" V → y {s.bvy:g}."
                )
        page = render_report(
            fits=fits,
            data=data,
            estimates=table,
            comparison=comparison,
            decomposition=decomposition,
            crosscheck=side_by_side(fits, within),
            effects=section,
            figures=paths,
            graphs=graphs,
            truth=truth,
            title=title,
            intro=intro,
            causal_text=(CAUSAL_TEXT + (TIME_CAUSAL_TEXT if simulated.vt is not None else ""))
            if simulated is not None
            else "",
            settings_text=settings_text,
        )
        write_html(tmp / "report.html", page)
    return out_dir / "report.html"
