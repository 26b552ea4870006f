"""``make bench``: the seed notebook's computations and ``groupfx demo``, side by side in one run.

Both run as subprocesses on the same settings, one after the other, on the same machine. The table in
``benchmarks/seed_results.md`` (in ``results.md``) gives wall time, the wall-time ratio, the bulk ESS of bxy
and bzy per model and that ESS per second of the whole run's wall time (what a user waits for), and peak
memory.

Usage: ``python benchmarks/run.py [--draws 1000 --tune 1000 --chains 4 --seed 42]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from groupfx.util.files import atomic_path
from machine import describe

HERE = Path(__file__).resolve().parent
MODELS = {
    "naive": "Naive",
    "fixed": "Fixed effects",
    "multilevel": "Multilevel",
    "mundlak": "Mundlak",
    "latent": "Latent Mundlak",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in (("seed", 42), ("groups", 30), ("units", 2000), ("draws", 1000), ("tune", 1000),
                          ("chains", 4)):  # fmt: skip
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--out", type=Path, default=HERE / "seed_results.md")
    parser.add_argument("--work", type=Path, default=HERE / "out")
    return parser.parse_args(argv)


def settings_args(args: argparse.Namespace) -> list[str]:
    return [f"--{k}={getattr(args, k)}" for k in ("seed", "groups", "units", "draws", "tune", "chains")]


MEASURE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def timed(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return its wall seconds and the peak RSS (MiB) of its largest process.

    The command runs under a small wrapper process, so the peak covers that command's processes only.
    """
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, *command], check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    return wall, int(result.stdout.split()[-1]) / 1024


def run_seed(args: argparse.Namespace) -> dict:
    path = args.work / "seed.json"
    wall, rss = timed(
        [sys.executable, str(HERE / "seed_notebook.py"), *settings_args(args), "--json", str(path)]
    )
    result = json.loads(path.read_text())
    result["outer_wall_s"], result["outer_peak_rss_mb"] = wall, rss
    return result


def run_groupfx(args: argparse.Namespace) -> dict:
    out = args.work / "groupfx-demo"
    groupfx = Path(sys.executable).with_name("groupfx")
    wall, rss = timed([str(groupfx), "demo", "--out", str(out), *settings_args(args)])
    table = pd.read_csv(out / "estimates.csv")
    fits = pd.read_csv(out / "fits.csv").set_index("model")
    models = {}
    for key, label in MODELS.items():
        rows = table[table.model == label].set_index("parameter")
        models[key] = {
            "ess_bxy": float(rows.loc["bxy", "ess_bulk"]),
            "ess_bzy": float(rows.loc["bzy", "ess_bulk"]),
            "rhat_bxy": float(rows.loc["bxy", "r_hat"]),
            "rhat_bzy": float(rows.loc["bzy", "r_hat"]),
            "divergences": int(fits.loc[label, "divergences"]),
        }
    return {"wall_s": wall, "peak_rss_mb": rss, "models": models}


def seed_model(seed: dict, key: str) -> dict:
    model = seed["models"][key]
    return {
        "ess_bxy": model["bxy"]["ess_bulk"],
        "ess_bzy": model["bzy"]["ess_bulk"],
        "divergences": model["divergences"],
    }


def render(args: argparse.Namespace, seed: dict, ours: dict) -> str:
    seed_wall, our_wall = seed["outer_wall_s"], ours["wall_s"]
    lines = [
        "# The seed study: groupfx demo against the seed notebook's computations",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {describe()}; command `make bench` "
        f"(`python benchmarks/run.py {' '.join(settings_args(args))}`).",
        "",
        "Both on the same simulated data and settings, one after the other in one run. The seed's side is",
        "its code transcribed as it is (`benchmarks/seed_notebook.py`: pm.sample with nutpie per model, the",
        "Deterministic p, compute_log_likelihood, az.compare), without plots; groupfx's side is the whole",
        "`groupfx demo` command, report and figures included.",
        "ESS/s is bulk ESS per second of the run's wall time.",
        "",
        "| | seed notebook | groupfx demo | ratio |",
        "|---|---:|---:|---:|",
        f"| wall time (s) | {seed_wall:.1f} | {our_wall:.1f} | **{our_wall / seed_wall:.2f}** |",
        f"| peak RSS of the largest process (MiB) | {seed['outer_peak_rss_mb']:.0f} | "
        f"{ours['peak_rss_mb']:.0f} | {ours['peak_rss_mb'] / seed['outer_peak_rss_mb']:.2f} |",
        "",
        "| model | ESS bxy seed | ESS bxy groupfx | ESS/s bxy seed | ESS/s bxy groupfx | ESS bzy seed | "
        "ESS bzy groupfx | ESS/s bzy seed | ESS/s bzy groupfx | divergences seed / groupfx |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in MODELS.items():
        s, o = seed_model(seed, key), ours["models"][key]
        lines.append(
            f"| {label} | {s['ess_bxy']:.0f} | {o['ess_bxy']:.0f} | {s['ess_bxy'] / seed_wall:.1f} | "
            f"{o['ess_bxy'] / our_wall:.1f} | {s['ess_bzy']:.0f} | {o['ess_bzy']:.0f} | "
            f"{s['ess_bzy'] / seed_wall:.1f} | {o['ess_bzy'] / our_wall:.1f} | "
            f"{s['divergences']} / {o['divergences']} |"
        )
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    print("running the seed notebook's computations ...", flush=True)
    seed = run_seed(args)
    print(f"  {seed['outer_wall_s']:.1f} s; running groupfx demo ...", flush=True)
    ours = run_groupfx(args)
    print(f"  {ours['wall_s']:.1f} s", flush=True)
    write_atomic(args.work / "bench.json", json.dumps({"seed": seed, "groupfx": ours}, indent=2))
    text = render(args, seed, ours)
    write_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
