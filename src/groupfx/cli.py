"""The ``groupfx`` command line.

Every error a user can cause ends the program with one line on stderr and a non-zero exit status; long
work shows a progress display, and the end prints a short summary.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from groupfx.errors import GroupfxError, InputError
from groupfx.models.families import FAMILIES

EXIT_USAGE = 2
EXIT_ERROR = 1


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, without the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def _nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0)


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
    return value


def _acceptance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def _loo_setting(text: str) -> str | int:
    if text in ("auto", "exact"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected auto, exact or a number of units to subsample, got {text!r}"
        ) from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"a subsample needs at least 2 units, got {value}")
    return value


def _model_list(text: str) -> list[str]:
    from groupfx.models.builders import DEFAULT_MODELS, MODELS

    names = (
        list(DEFAULT_MODELS) if text == "all" else [name.strip() for name in text.split(",") if name.strip()]
    )
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model {unknown[0] if unknown else text!r}; choose from {', '.join(MODELS)} or 'all'"
        )
    return names


def _add_sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=_nonnegative_int, default=42, help="seed (42)")
    parser.add_argument("--draws", type=_positive_int, default=1000, help="draws per chain (1000)")
    parser.add_argument(
        "--tune", type=_nonnegative_int, default=1000, help="tuning iterations per chain (1000)"
    )
    parser.add_argument("--chains", type=_positive_int, default=4, help="number of chains (4)")
    parser.add_argument("--cores", type=_positive_int, default=None, help="chains run at once (CPU count)")
    parser.add_argument(
        "--precision",
        choices=("float64", "float32"),
        default="float64",
        help="precision of the per-unit work: float32 is ~1.5x faster on large data (float64)",
    )
    parser.add_argument(
        "--backend",
        choices=("numba", "jax"),
        default="numba",
        help="numba: fused kernels on the CPU; jax: the PyMC model on JAX's device, a GPU if it has one"
        " (numba)",
    )
    parser.add_argument(
        "--mass-matrix",
        choices=("auto", "low-rank", "diagonal"),
        default="auto",
        help="nutpie's mass matrix: auto is low-rank up to 1,000 parameters, diagonal above (auto)",
    )
    parser.add_argument(
        "--target-accept",
        type=_acceptance,
        default=None,
        help="NUTS target acceptance for every model (default each model's own: 0.8 naive, 0.95 fixed"
        " effects, 0.9 the pooled models, 0.8 for them from 300 groups on one-way data)",
    )
    parser.add_argument(
        "--loo",
        type=_loo_setting,
        default="auto",
        metavar="{auto,exact,N}",
        help="PSIS-LOO of every unit (exact), of a random subsample of N units with the rest approximated,"
        " or auto: every unit below 100 million log-likelihood values (25,000 units at 4,000 draws), a"
        " subsample sized for a subsampling SE of about 1 above (auto)",
    )
    parser.add_argument(
        "--models",
        type=_model_list,
        default=None,
        help="comma-separated models to fit, or 'all' (default all)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``groupfx`` and its subcommands."""
    parser = _Parser(
        prog="groupfx", description="Causal effects in grouped data under group-level confounding."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    demo = sub.add_parser(
        "demo",
        help="run the seed study end to end into a report",
        description="Simulate the seed study's data, fit the five models, write a report with every figure.",
    )
    demo.add_argument("--out", type=Path, default=Path("groupfx-demo"), help="output folder (groupfx-demo)")
    demo.add_argument("--groups", type=_int_at_least_two, default=30, help="number of groups (30)")
    demo.add_argument("--units", type=_int_at_least_two, default=2000, help="number of units (2000)")
    demo.add_argument(
        "--time-shocks",
        action="store_true",
        help="add a period confounder: the units spread over 10 periods, an unobserved shock per period"
        " (sd 1.5, as U's) drives x and y, and every model but the naive one is fitted two-way, with"
        " period terms (fewer units than 10 are refused)",
    )
    _add_sampling_options(demo)
    fit = sub.add_parser(
        "fit",
        help="fit the strategies to your own CSV or Parquet table",
        description="Fit the strategies to a table with one row per unit; write the same report as the demo.",
    )
    fit.add_argument("data", type=Path, help="a .csv or .parquet file")
    fit.add_argument(
        "--formula",
        default=None,
        help="'y ~ x1 + x2 + z | group' instead of --y/--x/--z/--group; covariates constant within every"
        " group become z (formulaic grammar: np.log(a), C(b), a:b work)",
    )
    fit.add_argument("--y", default=None, help="outcome column")
    fit.add_argument(
        "--x", action="append", default=None, help="unit-level variable whose effect is wanted (repeatable)"
    )
    fit.add_argument("--group", default=None, help="group column (labels kept as they are)")
    fit.add_argument(
        "--time",
        default=None,
        help="period column of a panel (or any factor crossed with the group): two-way effects; a"
        " formula gives it as '| group + year'",
    )
    fit.add_argument(
        "--z",
        action="append",
        default=None,
        help="group-level covariate, constant within groups (repeatable)",
    )
    fit.add_argument("--priors", type=Path, default=None, help="TOML file of priors by parameter name")
    fit.add_argument(
        "--family",
        choices=list(FAMILIES),
        default="bernoulli",
        help="outcome family: bernoulli (0/1, logit), binomial (successes of --trials, logit), poisson"
        " (counts, log), gaussian (identity)",
    )
    fit.add_argument("--trials", default=None, help="number-of-trials column (binomial family)")
    fit.add_argument("--exposure", default=None, help="exposure column, an offset (poisson family)")
    fit.add_argument(
        "--dropna", action="store_true", help="drop rows with missing values instead of refusing"
    )
    fit.add_argument("--out", type=Path, default=Path("groupfx-fit"), help="output folder (groupfx-fit)")
    _add_sampling_options(fit)
    study = sub.add_parser(
        "study",
        help="measure bias, RMSE and coverage of each strategy over many simulated replicates",
        description="Fit the strategies to many simulated replicates of each scenario; summarise bias,"
        " RMSE, coverage and LOO wins; write a report. Each finished fit is kept on disk at once.",
    )
    study.add_argument("--replicates", type=_positive_int, default=100, help="replicates per scenario (100)")
    study.add_argument("--scenarios", type=Path, default=None, help="TOML file of [[scenario]] tables")
    study.add_argument(
        "--time-shocks",
        action="store_true",
        help="add the scenario 'time-shocks' to the grid (the default one or --scenarios'): the seed's"
        " setting spread over 10 periods, with an unobserved shock per period (sd 1.5) driving x and y;"
        " in it each model is fitted to every replicate one-way and two-way ('Mundlak (two-way)'), the"
        " naive one once. A --scenarios table with n_periods and time_sd is fitted the same way",
    )
    study.add_argument("--models", type=_model_list, default=None, help="comma-separated models, or 'all'")
    study.add_argument("--workers", type=_positive_int, default=None, help="local worker processes (cores)")
    study.add_argument("--scheduler", default=None, help="run on a Dask cluster: tcp://host:port")
    study.add_argument("--out", type=Path, default=Path("groupfx-study"), help="study folder (groupfx-study)")
    study.add_argument(
        "--resume", action="store_true", help="finish the study in --out: fit only what is missing"
    )
    study.add_argument("--seed", type=_nonnegative_int, default=42, help="study seed (42)")
    study.add_argument("--draws", type=_positive_int, default=500, help="draws per chain (500)")
    study.add_argument("--tune", type=_nonnegative_int, default=500, help="tuning iterations per chain (500)")
    study.add_argument("--chains", type=_positive_int, default=2, help="chains per fit (2)")
    dataset = sub.add_parser(
        "dataset",
        help="write a packaged real data set to CSV (no network needed)",
        description="Write a real panel data set that ships with an installed package to a CSV file.",
    )
    dataset.add_argument("name", nargs="?", default=None, help="data set name; leave out to list them")
    dataset.add_argument("--out", type=Path, default=None, help="CSV file to write (NAME.csv)")
    return parser


def run_study_command(args: argparse.Namespace) -> int:
    """Run ``groupfx study``."""
    import contextlib

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from groupfx.models.builders import DEFAULT_MODELS
    from groupfx.study.report import write_study_report
    from groupfx.study.run import connect, run_study
    from groupfx.study.scenarios import DEFAULT_SCENARIOS, TIME_SHOCKS, load_scenarios
    from groupfx.study.store import existing_results
    from groupfx.study.summary import summarise_study
    from groupfx.study.tasks import StudySettings
    from groupfx.util.files import check_output_folder, claim_output_folder

    check_output_folder(args.out, "study")  # the study's own checks follow in run_study, before any fit
    started = time.perf_counter()
    scenarios = load_scenarios(args.scenarios) if args.scenarios is not None else DEFAULT_SCENARIOS
    if args.time_shocks:
        if TIME_SHOCKS.name in {scenario.name for scenario in scenarios}:
            raise InputError(
                f"The scenarios already hold one named {TIME_SHOCKS.name!r}; rename it, or drop"
                " --time-shocks."
            )
        scenarios = (*scenarios, TIME_SHOCKS)
    settings = StudySettings(
        replicates=args.replicates,
        models=tuple(args.models or DEFAULT_MODELS),
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        seed=args.seed,
    )
    existing_results(args.out, scenarios, settings, args.resume)  # refused before the progress display
    client = connect(args.scheduler) if args.scheduler is not None else contextlib.nullcontext()
    console = _console()
    with claim_output_folder(args.out, "study"), client:  # locked until the report is written
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            auto_refresh=False,
        ) as bar:
            task = bar.add_task("fitting", total=None, counts="")

            def progress(state) -> None:
                bar.update(
                    task,
                    total=state.total - state.skipped,
                    completed=state.done,
                    counts=f"{state.done} done, {state.remaining} remaining, {state.failed} failed"
                    + (f", {state.skipped} from before" if state.skipped else ""),
                )
                bar.refresh()

            results = run_study(
                scenarios,
                settings,
                args.out,
                workers=args.workers,
                scheduler=client if args.scheduler is not None else None,
                resume=args.resume,
                progress=progress,
            )
        report = write_study_report(
            results, scenarios, settings, args.out, {"wall time": time.perf_counter() - started}
        )
    summary = summarise_study(results)
    shown = summary[summary["parameter"] == "bxy"][["scenario", "model", "bias", "rmse", "coverage", "width",
                                                    "loo_win_rate", "failed"]]  # fmt: skip
    console.print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"), highlight=False)
    console.print(f"Report: {report}  ({time.perf_counter() - started:.0f} s)", highlight=False)
    return 0


def run_dataset_command(args: argparse.Namespace) -> int:
    """Run ``groupfx dataset``: list the data sets, or write one to CSV."""
    from groupfx.data.datasets import DATASETS, write_dataset

    if args.name is None:
        for name, (_, description) in DATASETS.items():
            print(f"{name:<12} {description}")
        return 0
    path = write_dataset(args.name, args.out or Path(f"{args.name}.csv"))
    print(f"Wrote {path}")
    return 0


def _int_at_least_two(text: str) -> int:
    return _int_at_least(text, 2)


def _quiet_libraries() -> None:
    """Keep the libraries' warnings and logs off the terminal (groupfx says what matters itself)."""
    from groupfx.util.quiet import quiet_libraries

    quiet_libraries()


def _run_with_progress(first_step: str, n_models: int, work: Callable[[Callable[[str], None]], object]):
    """Run ``work(step)`` under a progress bar; ``step(description)`` marks the start of each step."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    steps = 3 * n_models + 6
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=_console(),
        transient=False,
        auto_refresh=False,  # no refresh thread: fits run in forked worker processes
    ) as bar:
        task = bar.add_task(first_step, total=steps)
        started = [0]

        def step(description: str) -> None:
            started[0] += 1
            bar.update(task, completed=min(steps, started[0]), description=description)
            bar.refresh()

        result = work(step)
        bar.update(task, completed=steps, description="done")
        bar.refresh()
    return result


def _console():
    from rich.console import Console

    console = Console(stderr=True)
    # logs and pipes get a fixed width wide enough for the summary table instead of rich's 80 columns
    return console if console.is_terminal else Console(stderr=True, width=120)


def _print_summary(fits, table, comparison, truth, report: Path, started: float) -> None:
    from rich.markup import escape

    from groupfx.engines.diagnostics import condense
    from groupfx.report.summary import summary_table

    console = _console()
    console.print(summary_table(fits, table, comparison, truth))
    if len(fits) == 1:
        (fit,) = fits.values()
        console.print(
            f"PSIS-LOO of {escape(fit.label)}: elpd_loo {fit.loo.elpd_loo:.1f} (se {fit.loo.se:.1f});"
            " one model, so nothing to rank.",
            highlight=False,
        )
    for fit in fits.values():
        for line in condense(fit.issues):
            console.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False)
    console.print(f"Report: {escape(str(report))}  ({time.perf_counter() - started:.0f} s)")


def _sampler(args: argparse.Namespace):
    from groupfx.engines.sampling import SamplerSettings

    return SamplerSettings(
        draws=args.draws,
        tune=args.tune,
        chains=args.chains,
        cores=args.cores,
        seed=args.seed,
        precision=args.precision,
        backend=args.backend,
        low_rank_mass_matrix={"auto": None, "low-rank": True, "diagonal": False}[args.mass_matrix],
        target_accept=args.target_accept,
        loo=args.loo,
    )


def run_demo_command(args: argparse.Namespace) -> int:
    """Run ``groupfx demo``."""
    from groupfx.data.simulate import SimulationSettings
    from groupfx.demo import TIME_SHOCKS, run_demo
    from groupfx.models.builders import DEFAULT_MODELS
    from groupfx.util.files import check_output_folder

    check_output_folder(args.out, "report")  # run_demo locks it before simulating
    started = time.perf_counter()
    shocks = TIME_SHOCKS if args.time_shocks else {}
    simulation = SimulationSettings(n_groups=args.groups, n_units=args.units, seed=args.seed, **shocks)
    sampler = _sampler(args)
    models = args.models or list(DEFAULT_MODELS)
    result = _run_with_progress(
        "simulating data",
        len(models),
        lambda step: run_demo(
            args.out,
            simulation=simulation,
            sampler=sampler,
            models=models,
            progress=lambda label, what: step(f"{label}: {what}"),
            writing=lambda part: step(f"writing {part}"),
        ),
    )
    _print_summary(
        result.fits, result.estimates, result.comparison, result.simulated.truth, result.report, started
    )
    return 0


def run_fit_command(args: argparse.Namespace) -> int:
    """Run ``groupfx fit``."""
    from rich.markup import escape

    from groupfx.data.reader import DataWarning, read_data
    from groupfx.fitting import fit_all
    from groupfx.models.builders import DEFAULT_MODELS, get_spec
    from groupfx.models.priors import load_priors
    from groupfx.report.outputs import write_report
    from groupfx.results.fits import compare, estimates
    from groupfx.util.files import check_output_folder, claim_output_folder

    started = time.perf_counter()
    sampler = _sampler(args)
    models = args.models or list(DEFAULT_MODELS)
    if args.formula is None and (args.y is None or not args.x or args.group is None):
        raise InputError("name the columns with --y, --x and --group (and --z), or give --formula")
    check_output_folder(args.out, "report", inputs=(args.data, args.priors))  # before reading anything
    priors = load_priors(args.priors) if args.priors is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        data = read_data(
            args.data,
            y=args.y,
            x=args.x,
            group=args.group,
            z=args.z,
            formula=args.formula,
            family=args.family,
            trials=args.trials,
            exposure=args.exposure,
            time=args.time,
            dropna=args.dropna,
        )
    for name in models:
        get_spec(name).check_data(data)
    console = _console()
    for warning in caught:
        if issubclass(warning.category, DataWarning):
            console.print(f"[yellow]warning:[/yellow] {escape(str(warning.message))}", highlight=False)
    x_text, y_name, group_name = ", ".join(data.x_names), data.names["y"], data.names["group"]
    title = f"groupfx: the effect of {x_text} on {y_name}, grouped by {group_name}"
    periods = ""
    if data.two_way:
        title += f" and {data.names['time']}"
        shape = "a balanced panel" if data.balanced else "an unbalanced panel"
        periods = f" and {data.n_times} periods ({data.names['time']}, {shape})"
    verb = "is a group-level covariate" if data.n_z == 1 else "are group-level covariates"
    z_text = f"{', '.join(data.z_names)} {verb} (bzy)" if data.n_z else "there is no group-level covariate"
    intro = (
        f"Data: {args.data.name}, {data.n_units} units in {data.n_groups} groups{periods}. Each strategy"
        " estimates"
        f" the effect of {x_text} on {y_name} (bxy, {args.family} family) while the groups may hide"
        f" confounders; {z_text}."
    )

    def work(step: Callable[[str], None]):
        fits = fit_all(
            data,
            models,
            priors=priors,
            family=args.family,
            settings=sampler,
            warn=False,
            progress=lambda m, what: step(f"{m}: {what}"),
        )
        report = write_report(
            fits, args.out, title=title, intro=intro, progress=lambda p: step(f"writing {p}")
        )
        return fits, report

    with claim_output_folder(args.out, "report", inputs=(args.data, args.priors)):  # locked until written
        fits, report = _run_with_progress("reading data", len(models), work)
    _print_summary(fits, estimates(fits), compare(fits), None, report, started)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``groupfx`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from importlib.metadata import version

        print(version("groupfx"))
        return 0
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    _quiet_libraries()
    import matplotlib

    matplotlib.use("Agg")  # figures go to files; no display is needed or wanted
    try:
        if args.command == "demo":
            return run_demo_command(args)
        if args.command == "fit":
            return run_fit_command(args)
        if args.command == "study":
            return run_study_command(args)
        if args.command == "dataset":
            return run_dataset_command(args)
    except InputError as error:
        print(f"groupfx: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except GroupfxError as error:
        print(f"groupfx: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("groupfx: interrupted; nothing was written.", file=sys.stderr)
        return 130
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
