"""The HTML report: one self-contained page (figures embedded) that tells the study's story."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from groupfx.data.grouped import GroupedData
from groupfx.engines.diagnostics import ESS_MIN, PARETO_K_MAX, RHAT_MAX, condense, subsample_phrase
from groupfx.loo import loglik
from groupfx.loo.subsample import is_subsampled, n_subsample
from groupfx.models.families import get_family
from groupfx.models.graphs import GraphFile
from groupfx.models.priors import DEFAULT_PRIORS
from groupfx.results.fits import ESTIMATE_COLUMNS, Fit, as_fit_list, effect_label, effect_terms, truth_of
from groupfx.util.files import atomic_path


@dataclass(frozen=True)
class EmbeddedImage:
    """A PNG as a data URI, with its alternative text."""

    uri: str
    alt: str

    @classmethod
    def from_file(cls, path: Path, alt: str) -> EmbeddedImage:
        """Read a PNG file into a data URI."""
        encoded = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        return cls(f"data:image/png;base64,{encoded}", alt)


def _graph_html(graph: GraphFile | None) -> str:
    if graph is None:
        return ""
    image = EmbeddedImage.from_file(graph.path, f"Graph of the {graph.name} model")
    dot = f"{graph.dot_path.parent.name}/{graph.dot_path.name}"
    return (
        f'<img src="{image.uri}" alt="{html.escape(image.alt)}">'
        f"<p><small>Its Graphviz source: <code>{html.escape(dot)}</code>.</small></p>"
    )


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    return frame.to_html(float_format=lambda v: f"{v:.{digits}f}", na_rep="", border=0)


def conclusions(
    fits: Sequence[Fit],
    estimates: pd.DataFrame,
    comparison: pd.DataFrame,
    truth: Mapping[str, float] | None,
) -> list[str]:
    """Plain sentences on what each model says about the effects, against the truth where known.

    Intervals and standard deviations are read from ``estimates`` (the table of :func:`estimates`), the
    ranking from ``comparison`` (:func:`groupfx.compare`); with one model the ranking is replaced by one
    sentence giving its elpd_loo.
    """
    fits = as_fit_list(fits, "conclusions")
    rows = estimates.set_index(["model", "parameter", "term"])
    lines = []
    for param, term in effect_terms(fits[0].data):
        name = effect_label(param, term, fits[0].data)
        value = truth_of(truth, param, term)
        covering, excluding = [], []
        for fit in fits:
            if param in fit.spec.not_identified:
                continue
            low, high = rows.loc[(fit.label, param, term), ["hdi_low", "hdi_high"]]
            target = 0.0 if value is None else value
            (covering if low <= target <= high else excluding).append(fit.label)
        what = f"{name} = 0" if value is None else f"the true {name} = {value:g}"
        if covering:
            lines.append(f"The 94% HDI of {name} includes {what} under: {', '.join(covering)}.")
        if excluding:
            lines.append(f"The 94% HDI of {name} excludes {what} under: {', '.join(excluding)}.")
    for fit in fits:
        for param, reason in fit.spec.not_identified.items():
            for p, term in effect_terms(fit.data):
                if p == param:
                    sd = rows.loc[(fit.label, param, term), "sd"]
                    name = effect_label(param, term, fit.data)
                    lines.append(f"{fit.label}: {name} is not identified (posterior sd {sd:.2f}). {reason}")
    flagged = sorted({issue.model for fit in fits for issue in fit.issues if issue.of_sampler})
    if len(fits) > 1:
        lines.append(f"PSIS-LOO ranks the models (best first): {', '.join(comparison.index)}.")
        if flagged:
            lines.append(f"Sampler diagnostics need attention for: {', '.join(flagged)} (see each model).")
        else:
            lines.append(
                "Every model passed the sampler diagnostics (no divergences, R-hat and ESS within bounds)."
            )
        return lines
    (fit,) = fits
    lines.append(single_loo_text(fit))
    if flagged:
        lines.append(f"The sampler diagnostics of {fit.label} need attention (see the model's section).")
    else:
        lines.append(
            f"{fit.label} passed the sampler diagnostics (no divergences, R-hat and ESS within bounds)."
        )
    return lines


def single_loo_text(fit: Fit) -> str:
    """The sentence that stands for the LOO ranking when only one model was fitted."""
    return (
        f"PSIS-LOO ranks models against each other and only {fit.label} was fitted, so there is nothing to"
        f" rank: its elpd_loo is {fit.loo.elpd_loo:.1f} (se {fit.loo.se:.1f}, p_loo {fit.loo.p_loo:.1f})."
    )


def _priors_text(fits: Sequence[Fit], priors: Mapping[str, object]) -> str:
    """The priors of the parameters the fitted models use, overridden ones marked."""
    used = {name for fit in fits for name in fit.idata.posterior.data_vars}
    defaults = DEFAULT_PRIORS
    return ", ".join(
        f"{name} ~ {prior.describe()}" + (" (set by you)" if prior != defaults.get(name) else "")
        for name, prior in priors.items()
        if name in used
    )


def _effects_context(section, image, figures) -> dict | None:
    """What the template shows of the effects and checks (None when they were not computed)."""
    if section is None:
        return None
    averages = section.effects[section.effects["group"] == "average"].drop(columns=["group"])
    if averages["truth"].isna().all():
        averages = averages.drop(columns=["truth"])
    keys = [k for k in figures if k.startswith("effects_")]
    return {
        "sentences": section.sentences,
        "averages": _table(averages.set_index(["model", "x"])),
        "errors": None if section.errors is None else _table(section.errors.set_index("model")),
        "figures": [image(k, k.replace("_", " ")) for k in keys],
        "intercepts": image("group_intercepts", "Group intercepts against the truth")
        if "group_intercepts" in figures
        else None,
        "checks": [
            image("ppc_groups", "Posterior predictive check by group"),
            image("calibration", "Calibration"),
            image("prior_predictive", "Prior predictive check"),
        ],
        "scale": section.scale,
    }


def loo_notes(fits: Sequence[Fit]) -> list[str]:
    """A sentence per model whose PSIS-LOO has observations with Pareto k above 0.7 (unreliable there)."""
    notes = []
    what = "its rank" if len(fits) > 1 else "it"
    for fit in fits:
        bad = int((np.asarray(fit.loo.pareto_k) > PARETO_K_MAX).sum())
        if bad:
            among = subsample_phrase(int(fit.loo.n_data_points) if is_subsampled(fit.loo) else None)
            notes.append(
                f"{fit.label}: {bad} of {len(fit.loo.pareto_k)} observations{among} have Pareto k >"
                f" {PARETO_K_MAX},"
                " so its LOO estimate is unreliable there (they are influential: often units of small or"
                f" all-0 / all-1 groups whose intercept they alone inform); read {what} with care."
            )
    return notes


def loo_cost(fits: Sequence[Fit]) -> str:
    """What the blocked PSIS-LOO cost: the array it never held, the block it held instead, the seconds."""
    if not fits:
        return ""
    first = fits[0]
    n_samples, n_units = int(first.loo.n_samples), int(first.loo.n_data_points)
    block = loglik.loo_block_units(n_samples)
    seconds = ", ".join(f"{fit.label} {fit.timings.get('loo', float('nan')):.1f} s" for fit in fits)
    text = (
        f"The pointwise log-likelihood ({n_samples:,} draws x {n_units:,} units,"
        f" {8 * n_samples * n_units / 2**20:,.0f} MiB if held whole) was computed {min(block, n_units):,}"
        f" units at a time ({8 * n_samples * min(block, n_units) / 2**20:,.0f} MiB), smoothed and dropped;"
        f" LOO took {seconds}."
    )
    return text + subsample_text(fits)


def subsample_text(fits: Sequence[Fit]) -> str:
    """What the report says of the fits whose LOO smoothed a subsample of the units (empty if none did)."""
    sampled = [fit for fit in fits if is_subsampled(fit.loo)]
    if not sampled:
        return ""
    each = ", ".join(
        f"{fit.label} {n_subsample(fit.loo):,} (subsampling SE {float(fit.loo.subsample_se):.2f})"
        for fit in sampled
    )
    return (
        f" On these {int(sampled[0].loo.n_data_points):,} units PSIS smoothed a random subsample exactly"
        f" and the log-likelihood at the posterior mean stood in for the rest, corrected by the subsample"
        f" (the difference estimator of Magnusson et al. 2019): {each}; every model shares the units of"
        ' the smallest subsample, on which the differences are estimated. Pass --loo exact (loo="exact")'
        " to smooth every unit."
    )


def render_report(
    *,
    fits: Sequence[Fit],
    data: GroupedData,
    estimates: pd.DataFrame,
    comparison: pd.DataFrame,
    figures: Mapping[str, Path],
    decomposition: pd.DataFrame | None = None,
    crosscheck: pd.DataFrame | None = None,
    effects=None,
    graphs: Mapping[str, GraphFile],
    truth: Mapping[str, float] | None = None,
    title: str = "groupfx report",
    intro: str = "",
    causal_text: str = "",
    settings_text: str = "",
) -> str:
    """Render the report's HTML from the study's pieces.

    ``figures`` maps figure keys (``group_counts``, ``x_by_group``, ``y_by_x``, ``posterior_<model>``,
    ``model_grid``, ``forest``, ``loo_compare``) to PNG files; ``graphs`` maps ``causal`` and model names
    to graph files. With one fit there is nothing to compare: ``loo_compare`` is not needed, and the LOO
    section gives that model's elpd_loo (and its Pareto k note) instead of a comparison table.
    """
    fits = as_fit_list(fits, "render_report")
    several = len(fits) > 1

    def image(key: str, alt: str) -> EmbeddedImage:
        return EmbeddedImage.from_file(figures[key], alt)

    columns = [c for c in ESTIMATE_COLUMNS if c not in ("model", "identified", "within_estimate")]
    if not truth:
        columns = [c for c in columns if c not in ("truth", "covers_truth")]
    models = []
    for fit in fits:
        rows = estimates[estimates["model"] == fit.label][columns].set_index(["parameter", "term"])
        models.append(
            {
                "label": fit.label,
                "equation": fit.spec.equation_for(fit.data),
                "idea": fit.spec.idea,
                "not_identified": fit.spec.not_identified,
                "table": _table(rows),
                # Pareto k is told once, in the LOO section (loo_notes); here the sampler's own issues
                "issues": condense([issue for issue in fit.issues if issue.of_sampler]),
                "posterior": image(f"posterior_{fit.model}", f"Posterior of bxy and bzy, {fit.label}"),
                "graph": graphs.get(fit.model),
            }
        )
    diagnostics = pd.DataFrame(
        {
            "divergences": [fit.divergences for fit in fits],
            "max R-hat": [float(estimates.loc[estimates.model == fit.label, "r_hat"].max()) for fit in fits],
            "min bulk ESS": [
                float(estimates.loc[estimates.model == fit.label, "ess_bulk"].min()) for fit in fits
            ],
            "compile s": [fit.timings.get("compile", np.nan) for fit in fits],
            "sample s": [fit.timings.get("sample", np.nan) for fit in fits],
            "LOO s": [fit.timings.get("loo", np.nan) for fit in fits],
        },
        index=pd.Index([fit.label for fit in fits], name="model"),
    )
    sizes = data.group_sizes
    y = np.asarray(data.y, dtype=float)
    binary = bool(np.isin(y, (0.0, 1.0)).all())
    outcome_text = (
        f"share of {data.names['y']} = 1: {y.mean():.3f}"
        if binary
        else (f"mean of {data.names['y']}: {y.mean():.3f}")
    )
    data_text = (
        f"{data.n_units} units in {data.n_groups} groups ({sizes.min()} to {sizes.max()} units a group, "
        f"median {np.median(sizes):g}); {outcome_text}. Unit-level x: {', '.join(data.x_names)}; group-level"
        f" z: {', '.join(data.z_names) or 'none'}."
    )
    if data.two_way:
        panel = "a balanced panel" if data.balanced else "an unbalanced panel"
        data_text += (
            f" Periods ({data.names['time']}): {data.n_times}, {data.time_sizes.min()} to"
            f" {data.time_sizes.max()} units a period ({panel}); each strategy but the naive one absorbs"
            " them beside the groups."
        )
    priors = fits[0].priors if fits else {}
    family = get_family(fits[0].family)
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("groupfx.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    template = environment.get_template("report.html.j2")
    return template.render(
        title=title,
        intro=intro,
        conclusions=conclusions(fits, estimates, comparison, truth),
        data_text=data_text,
        data_head=_table(data.to_frame().head(), digits=6),
        data_figures=[
            image("group_counts", "Units per group"),
            image("x_by_group", f"{', '.join(data.x_names)} by group"),
            image("y_by_x", f"{data.names['y']} by {', '.join(data.x_names)}"),
        ],
        causal_graph=graphs.get("causal"),
        causal_dag=image("causal_dag", "Causal graph") if "causal_dag" in figures else None,
        causal_text=causal_text,
        graph_html=_graph_html,
        family=family,
        priors_text=_priors_text(fits, priors),
        models=models,
        rhat_max=RHAT_MAX,
        ess_min=ESS_MIN,
        several=several,
        comparison_figures=[
            image(
                "model_grid",
                "Posteriors of bxy and bzy, all models" if several else "Posteriors of bxy and bzy",
            ),
            image("forest", "Forest plots of bxy and bzy"),
        ],
        loo_table=_table(comparison.drop(columns=["scale"], errors="ignore")) if several else None,
        loo_single=None if several else single_loo_text(fits[0]),
        loo_notes=loo_notes(fits),
        loo_cost=loo_cost(fits),
        decomposition=None
        if decomposition is None or decomposition.empty
        else _table(decomposition.set_index(["model", "term", "effect"])),
        crosscheck=None if crosscheck is None else _table(crosscheck),
        effects=_effects_context(effects, image, figures),
        loo_figure=image("loo_compare", "LOO comparison") if several else None,
        diagnostics_table=_table(diagnostics, digits=2),
        settings_text=settings_text,
        version=version("groupfx"),
    )


def write_html(path: str | Path, page: str) -> Path:
    """Write the page atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
