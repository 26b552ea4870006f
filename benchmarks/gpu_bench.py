"""The GPU check: groupfx's Mundlak models on JAX's device, two ways, within a time budget.

Each row fits one model to data from the seed's causal graph (``groupfx.simulate``), in a fresh process
(its own device memory, and a row that runs past its time limit is killed), one of two ways:

- ``nutpie``: groupfx's ``backend="jax"`` (:class:`groupfx.SamplerSettings`): nutpie's sampler runs on the
  CPU and calls the PyMC model's log-density and gradient, compiled to JAX, on the device once per leapfrog
  step, one thread per chain;
- ``numpyro``: the whole chain on the device: the model groupfx builds (:func:`groupfx.build_model`)
  sampled by PyMC's JAX sampler with numpyro's NUTS, the chains vectorised (``chain_method="vectorized"``).
  PyMC's JAX path replaces the ``pm.Data`` containers by constants, so the data are compiled into the
  program and compiling takes longer with more units.

The default plan, in the order it runs: the Mundlak and the latent Mundlak model at 1,000,000 units in 10,000
groups, both ways, float64; then the Mundlak model at 10,000,000 units in 100,000 groups the faster way
(the lower compile + sampling time at a million); then float32 rows (PyTensor's ``floatX``) the faster way
while time is left. 4 chains x (1000 tuning + 1000 draws). Each row records: the seconds simulating,
building (groupfx's model, and nutpie's compile step), compiling in JAX (tracing, lowering and XLA's
compile, from ``jax.monitoring``, wherever it happens) and sampling (the sampling call less that), peak
device memory, peak resident memory, R-hat and bulk ESS of bxy and bzy (ArviZ), leapfrog steps per draw and
divergences.

The rows stay within ``--budget`` seconds: each gets at most its own limit and what is left of the budget;
a row that would start with too little time left is skipped with a note. ``OUT/gpu_results.md`` and
``OUT/gpu_results.json`` are rewritten as each row ends, and each row's own log (warnings, tracebacks) is
``OUT/logs/ROW.log``. Nothing here needs the network.

Usage: ``python benchmarks/gpu_bench.py --out OUT [--small] [--budget 420] [--rows ROW ...]`` with
``ROW = model:precision:way[:big]`` (way ``nutpie``, ``numpyro`` or ``faster``); ``--small`` runs the same
plan at 5,000 units (20,000 for the big row), 2 chains x (100 + 100), to check the whole path on a CPU;
``--units``, ``--groups``, ``--big-units``, ``--big-groups``, ``--chains``, ``--draws`` and ``--tune``
override the plan's sizes. ``--warm-up`` imports what the rows need and stops (``gpu_check.sh`` runs it
first).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from machine import describe

HERE = Path(__file__).resolve().parent
WAYS = {
    "nutpie": "nutpie, JAX log-density per step",
    "numpyro": "PyMC + numpyro, vectorised chains on the device",
}
FULL = {"units": 1_000_000, "groups": 10_000, "big_units": 10_000_000, "big_groups": 100_000,
        "chains": 4, "draws": 1000, "tune": 1000, "budget": 420.0}  # fmt: skip
SMALL = {"units": 5_000, "groups": 50, "big_units": 20_000, "big_groups": 200,
         "chains": 2, "draws": 100, "tune": 100, "budget": 1800.0}  # fmt: skip
DEFAULT_ROWS = (
    "mundlak:float64:numpyro",
    "mundlak:float64:nutpie",
    "latent:float64:numpyro",
    "latent:float64:nutpie",
    "mundlak:float64:faster:big",
    "mundlak:float32:faster",
    "latent:float32:faster",
)
CAPS = {"numpyro": 110.0, "nutpie": 140.0, "faster": 110.0, "big": 170.0}
"""Each row's own time limit in seconds (full size, by way; ``big`` for the big row), before the budget's
remainder caps it further."""
SMALL_CAPS = {"numpyro": 420.0, "nutpie": 420.0, "faster": 420.0, "big": 480.0}
MIN_START_S = 25.0
"""A row is not started with less than this left of the budget."""


@dataclass
class Row:
    """One planned measurement and, once run, its result."""

    id: str
    model: str
    precision: str
    way: str
    units: int
    groups: int
    chains: int
    draws: int
    tune: int
    seed: int
    cap_s: float
    status: str = "planned"
    note: str = ""
    result: dict = field(default_factory=dict)


def plan(args: argparse.Namespace) -> list[Row]:
    """The rows to run, in order, from ``--rows`` (``model:precision:way[:big]``)."""
    sizes = dict(SMALL if args.small else FULL)
    sizes |= {key: getattr(args, key) for key in sizes if getattr(args, key, None) is not None}
    caps = SMALL_CAPS if args.small else CAPS
    rows = []
    for text in args.rows:
        parts = text.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "big"):
            raise SystemExit(f"gpu_bench.py: a row is model:precision:way[:big] (got {text!r})")
        model, precision, way = parts[:3]
        big = len(parts) == 4
        if precision not in ("float64", "float32") or way not in (*WAYS, "faster"):
            raise SystemExit(f"gpu_bench.py: unknown precision or way in {text!r}")
        rows.append(
            Row(
                id=text.replace(":", "-"),
                model=model,
                precision=precision,
                way=way,
                units=sizes["big_units" if big else "units"],
                groups=sizes["big_groups" if big else "groups"],
                chains=sizes["chains"],
                draws=sizes["draws"],
                tune=sizes["tune"],
                seed=args.seed,
                cap_s=args.row_limit or caps["big" if big else way],
            )
        )
    return rows


def faster_way(rows: list[Row]) -> tuple[str, str]:
    """The way with the lower compile + sampling time on the Mundlak model in float64 at the plan's smaller
    size, and why it was chosen."""
    times = {}
    for row in rows:
        if row.status == "ok" and row.model == "mundlak" and row.precision == "float64":
            if row.way in WAYS and row.units == min(r.units for r in rows):
                times[row.way] = row.result["jax_compile_s"] + row.result["sample_s"]
    if not times:
        return "numpyro", "numpyro: no Mundlak float64 row finished to compare the two ways"
    way = min(times, key=times.get)
    compared = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in sorted(times.items()))
    return way, f"{way}, the faster at {min(r.units for r in rows):,} units ({compared})"


# ---------------------------------------------------------------------------------------------- the child


def _say(text: str) -> None:
    print(f"@phase {text}", flush=True)


def jax_compat() -> list[str]:
    """Put back what PyTensor's JAX backend imports from JAX's private modules where a newer JAX moved it.

    PyTensor 2.38 imports ``scan`` from ``jax._src.lax.control_flow`` (its JAX Scan dispatch, loaded with
    the backend); the public ``jax.lax.scan`` is the same function. Returns the shims applied (none where
    JAX still has the name).
    """
    import importlib
    import types

    import jax

    applied = []
    try:
        module = importlib.import_module("jax._src.lax.control_flow")
    except ImportError:
        module = types.ModuleType("jax._src.lax.control_flow")
        sys.modules[module.__name__] = module
    if not hasattr(module, "scan"):
        module.scan = jax.lax.scan
        applied.append("jax._src.lax.control_flow.scan = jax.lax.scan")
    return applied


def warm_up() -> int:
    """Import everything a row imports, once: the bytecode and numba's caches are written here, not in the
    first row; prints the versions, JAX's devices and any shim applied."""
    import warnings

    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    applied = jax_compat()
    import jax
    import numpyro  # noqa: F401
    import pymc.sampling.jax  # noqa: F401  (loads PyTensor's JAX backend)

    import groupfx
    import groupfx.inference.engine

    print(f"groupfx {groupfx.__version__} from {groupfx.__file__}")
    print("versions:", ", ".join(f"{name} {v}" for name, v in _versions().items()))
    devices = jax.devices()
    print(f"jax.devices(): {len(devices)}, the first {devices[:2]}")
    print("shims:", "; ".join(applied) or "none needed")
    print(f"first import of everything a row needs: {time.perf_counter() - start:.0f} s")
    return 0


class _CompileClock:
    """Seconds JAX spent tracing, lowering and compiling, summed over every compilation in the process."""

    EVENTS = (
        "/jax/core/compile/jaxpr_trace_duration",
        "/jax/core/compile/jaxpr_to_mlir_module_duration",
        "/jax/core/compile/backend_compile_duration",
    )

    def __init__(self) -> None:
        import jax.monitoring

        self.total = 0.0
        self._lock = threading.Lock()
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event: str, duration: float, **_: object) -> None:
        if event in self.EVENTS:
            with self._lock:
                self.total += duration


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("groupfx", "pymc", "pytensor", "nutpie", "numpyro", "jax", "jaxlib", "numpy", "arviz"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def child(spec: dict) -> dict:
    """Fit one row in this process and return its measurements."""
    import logging
    import resource
    import warnings

    started = time.perf_counter()
    warnings.filterwarnings("ignore")
    for name in ("pymc", "pytensor", "jax", "numpyro"):
        logging.getLogger(name).setLevel(logging.ERROR)
    _say("importing JAX, PyMC and groupfx")
    clock = _CompileClock()
    shims = jax_compat()
    import jax

    if spec["precision"] == "float32":
        import pytensor

        pytensor.config.floatX = "float32"
    import arviz as az

    import groupfx
    from groupfx.engines.sampling import jax_device
    from groupfx.inference.engine import choose_engine
    from groupfx.models.builders import get_spec

    device = jax_device()
    imported_s = time.perf_counter() - started
    _say(f"imported in {imported_s:.1f} s; JAX computes on {device}")

    start = time.perf_counter()
    sim = groupfx.simulate(n_groups=spec["groups"], n_units=spec["units"], seed=spec["seed"])
    simulate_s = time.perf_counter() - start
    _say(f"simulated {spec['units']:,} units in {spec['groups']:,} groups in {simulate_s:.1f} s")
    target_accept = get_spec(spec["model"]).target_accept_for(sim.data)
    settings = groupfx.SamplerSettings(
        draws=spec["draws"],
        tune=spec["tune"],
        chains=spec["chains"],
        cores=spec["chains"],
        seed=spec["seed"],
        backend="jax",
    )

    compiled_at_start, start = clock.total, time.perf_counter()
    if spec["way"] == "nutpie":
        engine = choose_engine(spec["model"], sim.data, settings=settings).compile()
    else:
        model = groupfx.build_model(spec["model"], sim.data)
    build_s = time.perf_counter() - start - (clock.total - compiled_at_start)
    built = engine._graph.model if spec["way"] == "nutpie" else model
    dtypes = sorted({str(value.dtype) for value in built.value_vars})
    _say(f"built in {build_s:.1f} s; sampling {spec['chains']} chains x ({spec['tune']} + {spec['draws']})")

    compiled_before, start = clock.total, time.perf_counter()
    if spec["way"] == "nutpie":
        idata = engine.sample(settings, spec["seed"], target_accept)
    else:
        from pymc.sampling.jax import sample_jax_nuts

        idata = sample_jax_nuts(
            draws=spec["draws"],
            tune=spec["tune"],
            chains=spec["chains"],
            target_accept=target_accept,
            random_seed=spec["seed"],
            model=model,
            nuts_sampler="numpyro",
            chain_method="vectorized",
            progressbar=False,
            compute_convergence_checks=False,
            idata_kwargs={"log_likelihood": False},
        )
    sampling_call_s = time.perf_counter() - start
    compiled_sampling = clock.total - compiled_before
    _say(f"sampled in {sampling_call_s:.1f} s, of which JAX compiling {compiled_sampling:.1f} s")

    names = ["bxy", "bzy"]
    rhat = az.rhat(idata, var_names=names)
    ess = az.ess(idata, var_names=names, method="bulk")
    stats = idata.sample_stats
    memory = jax.devices()[0].memory_stats() or {}
    return {
        "device": device,
        "versions": _versions(),
        "import_s": imported_s,
        "simulate_s": simulate_s,
        "build_s": build_s,
        "jax_compile_s": clock.total - compiled_at_start,
        "sample_s": sampling_call_s - compiled_sampling,
        "wall_s": time.perf_counter() - started,
        "peak_device_mib": memory["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in memory else None,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rhat": {name: float(rhat[name].max()) for name in names},
        "ess_bulk": {name: float(ess[name].min()) for name in names},
        "bxy_mean": float(idata.posterior["bxy"].mean()),
        "parameter_dtypes": dtypes,
        "shims": shims,
        "steps_per_draw": float(stats["n_steps"].mean()),
        "divergences": int(stats["diverging"].sum()),
        "ran": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --------------------------------------------------------------------------------------------- the parent


def run_row(row: Row, out: Path, limit_s: float) -> None:
    """Run ``row`` in a child process killed after ``limit_s`` seconds; fills its status and result."""
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    spec = {key: getattr(row, key) for key in ("model", "precision", "way", "units", "groups", "chains")}
    spec |= {"draws": row.draws, "tune": row.tune, "seed": row.seed}
    started = time.monotonic()
    state = {"phase": "starting", "result": None}

    def read(stream) -> None:
        for line in stream:
            if line.startswith("@phase "):
                state["phase"] = line[7:].strip()
                print(f"  [{row.id} {time.monotonic() - started:5.0f} s] {state['phase']}", flush=True)
            elif line.startswith("@result "):
                state["result"] = json.loads(line[8:])

    with open(logs / f"{row.id}.log", "w", encoding="utf-8") as log:
        child_process = subprocess.Popen(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,  # its own process group: a timeout ends it and whatever it started
        )
        reader = threading.Thread(target=read, args=(child_process.stdout,), daemon=True)
        reader.start()
        try:
            code = child_process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            os.killpg(child_process.pid, signal.SIGKILL)
            child_process.wait()
            code = None
        reader.join(timeout=10)
    elapsed = time.monotonic() - started
    if code is None:
        row.status, row.note = "timeout", f"stopped at its {limit_s:.0f} s limit while: {state['phase']}"
    elif code == 0 and state["result"]:
        row.status, row.result = "ok", state["result"]
    else:
        tail = [line for line in (logs / f"{row.id}.log").read_text(errors="replace").splitlines() if line]
        reason = tail[-1][:300] if tail else f"exit {code} with no message"
        row.status, row.note = (
            "failed",
            f"exit {code} after {elapsed:.0f} s while: {state['phase']}: {reason}",
        )


def _fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> str:
    done = [row for row in rows if row.status == "ok"]
    first = done[0].result if done else {}
    versions = ", ".join(f"{name} {v}" for name, v in first.get("versions", {}).items()) or "-"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# GPU check",
        "",
        f"Run {stamp} on {describe()}; JAX device: {first.get('device', 'no row finished')}. Versions:"
        f" {versions}. Command `bash benchmarks/gpu_check.sh OUT{' --small' if args.small else ''}`"
        f" (`python benchmarks/gpu_bench.py --budget {args.budget:.0f}`). Data from the seed's causal graph"
        " (`groupfx.simulate`), Bernoulli outcome; each row a fresh process. Ways: "
        + "; ".join(f"`{key}` = {text}" for key, text in WAYS.items())
        + ". Build: groupfx's model (and nutpie's compile step); JAX compile: tracing, lowering and XLA's"
        " compile wherever they happen; sampling: the sampling call less JAX's compiling (numpyro's"
        " includes PyMC's graph rewrite and the transform of the draws). ESS/s: the smaller bulk ESS of"
        " bxy and bzy per second of sampling.",
        "",
        "| model | way | precision | units / groups | chains x (tune + draws) | status | build (s)"
        " | JAX compile (s) | sampling (s) | process wall (s) | peak device (MiB) | peak RSS (MiB)"
        " | R-hat bxy / bzy | bulk ESS bxy / bzy | ESS/s | steps per draw | divergences | note |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        r = row.result
        size = f"{row.units:,} / {row.groups:,}"
        draws = f"{row.chains} x ({row.tune} + {row.draws})"
        if row.status != "ok":
            lines.append(
                f"| {row.model} | {row.way} | {row.precision} | {size} | {draws} | {row.status} |"
                f" | | | | | | | | | | | {row.note} |"
            )
            continue
        ess = min(r["ess_bulk"].values())
        held = r.get("parameter_dtypes", [row.precision])
        precision = (
            row.precision if held == [row.precision] else f"{row.precision} (parameters {', '.join(held)})"
        )
        lines.append(
            f"| {row.model} | {row.way} | {precision} | {size} | {draws} | ok | {_fmt(r['build_s'], 1)}"
            f" | {_fmt(r['jax_compile_s'], 1)} | {_fmt(r['sample_s'], 1)} | {_fmt(r['wall_s'], 0)}"
            f" | {_fmt(r['peak_device_mib'])} | {_fmt(r['peak_rss_mib'])}"
            f" | {r['rhat']['bxy']:.3f} / {r['rhat']['bzy']:.3f}"
            f" | {r['ess_bulk']['bxy']:.0f} / {r['ess_bulk']['bzy']:.0f}"
            f" | {ess / max(r['sample_s'], 1e-9):.1f} | {r['steps_per_draw']:.1f} | {r['divergences']}"
            f" | {row.note} |"
        )
    if notes:
        lines += ["", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"


def write(out: Path, args: argparse.Namespace, rows: list[Row], notes: list[str]) -> None:
    """Rewrite the two result files (each through a temporary file and a rename)."""
    payload = {
        "machine": describe(),
        "small": args.small,
        "budget_s": args.budget,
        "notes": notes,
        "rows": [asdict(row) for row in rows],
    }
    for name, text in (
        ("gpu_results.md", render(args, rows, notes)),
        ("gpu_results.json", json.dumps(payload, indent=1)),
    ):
        temporary = out / f".{name}.tmp"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, out / name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for gpu_results.md, .json and logs/")
    parser.add_argument("--small", action="store_true", help="a small plan that checks the path on a CPU")
    parser.add_argument("--budget", type=float, help="seconds for all rows (default 420; 1800 with --small)")
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), help="model:precision:way[:big]")
    parser.add_argument("--seed", type=int, default=42)
    for name in ("units", "groups", "big_units", "big_groups", "chains", "draws", "tune"):
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, type=int, help=f"override the plan's {name.replace('_', ' ')}")
    parser.add_argument("--row-limit", type=float, help="seconds each row may take (default: by way)")
    parser.add_argument("--warm-up", action="store_true", help="import what the rows need, then stop")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warm_up:
        return warm_up()
    if args.child:
        print(f"@result {json.dumps(child(json.loads(args.child)))}", flush=True)
        return 0
    if args.out is None:
        parser.error("--out is required")
    args.budget = args.budget or (SMALL if args.small else FULL)["budget"]
    args.out.mkdir(parents=True, exist_ok=True)
    rows, notes = plan(args), []
    deadline = time.monotonic() + args.budget
    print(f"gpu_bench: {len(rows)} rows within {args.budget:.0f} s; results in {args.out}", flush=True)
    write(args.out, args, rows, notes)
    for row in rows:
        if row.way == "faster":
            row.way, why = faster_way(rows)
            row.note = f"the faster way: {why}"
        left = deadline - time.monotonic()
        if left < MIN_START_S:
            row.status, row.note = (
                "skipped",
                f"time budget spent ({max(left, 0):.0f} s left of {args.budget:.0f})",
            )
            print(f"- {row.id}: skipped, {row.note}", flush=True)
            write(args.out, args, rows, notes)
            continue
        limit = min(row.cap_s, left)
        print(f"- {row.id} ({row.way}, {row.units:,} units): up to {limit:.0f} s", flush=True)
        note, row.note = row.note, ""
        run_row(row, args.out, limit)
        row.note = "; ".join(part for part in (note, row.note) if part)
        r = row.result
        if row.status == "ok":
            print(
                f"  {row.id}: ok, JAX compile {r['jax_compile_s']:.1f} s, sampling {r['sample_s']:.1f} s,"
                f" R-hat {max(r['rhat'].values()):.3f}, bulk ESS {min(r['ess_bulk'].values()):.0f},"
                f" {r['steps_per_draw']:.1f} steps per draw, {r['divergences']} divergences,"
                f" peak device {_fmt(r['peak_device_mib'])} MiB",
                flush=True,
            )
        else:
            print(f"  {row.id}: {row.status}: {row.note}", flush=True)
        write(args.out, args, rows, notes)
    finished = sum(row.status == "ok" for row in rows)
    notes.append(f"{finished} of {len(rows)} rows finished within the {args.budget:.0f} s budget.")
    write(args.out, args, rows, notes)
    print(f"gpu_bench: {finished} of {len(rows)} rows ok; {args.out / 'gpu_results.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
