"""The ``groupfx`` command line.

Every error a user can cause ends the program with one line on stderr and a non-zero exit status; long
work shows a progress display, and the end prints a short summary.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from groupfx.errors import GroupfxError, InputError

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


def _model_list(text: str) -> list[str]:
    from groupfx.models import MODELS

    names = list(MODELS) if text == "all" else [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in MODELS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model {unknown[0] if unknown else text!r}; choose from {', '.join(MODELS)} or 'all'"
        )
    return names


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
    demo.add_argument(
        "--out", type=Path, default=Path("groupfx-demo"), help="output folder (default groupfx-demo)"
    )
    demo.add_argument(
        "--seed", type=_nonnegative_int, default=42, help="seed of simulation and sampling (42)"
    )
    demo.add_argument("--groups", type=_int_at_least_two, default=30, help="number of groups (30)")
    demo.add_argument("--units", type=_int_at_least_two, default=2000, help="number of units (2000)")
    demo.add_argument("--draws", type=_positive_int, default=1000, help="draws per chain (1000)")
    demo.add_argument(
        "--tune", type=_nonnegative_int, default=1000, help="tuning iterations per chain (1000)"
    )
    demo.add_argument("--chains", type=_positive_int, default=4, help="number of chains (4)")
    demo.add_argument("--cores", type=_positive_int, default=None, help="chains run at once (CPU count)")
    demo.add_argument(
        "--models",
        type=_model_list,
        default=None,
        help="comma-separated models to fit, or 'all' (default all)",
    )
    return parser


def _int_at_least_two(text: str) -> int:
    return _int_at_least(text, 2)


def _quiet_libraries() -> None:
    """Silence library chatter that says nothing to a user of the command line."""
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")
    warnings.filterwarnings("ignore", category=UserWarning, module="arviz")
    warnings.filterwarnings("ignore", category=UserWarning, module="nutpie")
    logging.getLogger("pymc").setLevel(logging.ERROR)


def run_demo_command(args: argparse.Namespace) -> int:
    """Run ``groupfx demo``."""
    import matplotlib

    matplotlib.use("Agg")
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from groupfx.demo import run_demo
    from groupfx.diagnostics import condense
    from groupfx.models import MODELS
    from groupfx.sampling import SamplerSettings
    from groupfx.simulate import SimulationSettings
    from groupfx.summary import summary_table

    simulation = SimulationSettings(n_groups=args.groups, n_units=args.units, seed=args.seed)
    sampler = SamplerSettings(
        draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores, seed=args.seed
    )
    models = args.models or list(MODELS)
    console = Console(stderr=True)
    steps = 3 * len(models) + 5
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        auto_refresh=False,  # no refresh thread: fits run in forked worker processes
    ) as bar:
        task = bar.add_task("simulating data", total=steps)
        started_steps = [0]

        def step(description: str) -> None:
            started_steps[0] += 1
            bar.update(task, completed=started_steps[0] - 1, description=description)
            bar.refresh()

        result = run_demo(
            args.out,
            simulation=simulation,
            sampler=sampler,
            models=models,
            progress=lambda label, what: step(f"{label}: {what}"),
            writing=lambda part: step(f"writing {part}"),
        )
        bar.update(task, completed=steps, description="done")
    console.print(summary_table(result.fits, result.estimates, result.comparison, result.simulated.truth))
    for fit in result.fits.values():
        for line in condense(fit.issues):
            console.print(f"[yellow]warning:[/yellow] {line}", highlight=False)
    console.print(f"Report: {result.report}  ({time.perf_counter() - started:.0f} s)")
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
    try:
        if args.command == "demo":
            return run_demo_command(args)
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
