"""Peers: groupfx beside what its users would pick instead, measured side by side in one run.

The peers, each on the same rows (one CSV per size, simulated with ``groupfx.simulate`` and read by all):

- **Bambi + nutpie**, in a virtual environment of its own that this script makes (``benchmarks/.peers-venv``,
  pinned by ``benchmarks/peers-requirements.txt``; quick when it exists): ``y ~ x + z`` (naive),
  ``y ~ 0 + x + C(group)`` (fixed effects; z is dropped, being a combination of the group dummies),
  ``y ~ x + z + (1|group)`` (multilevel), ``y ~ x + z + xbar + (1|group)`` (Mundlak), family bernoulli,
  ``model.fit(inference_method="nutpie")``, then the log-likelihood and ``az.loo`` (``benchmarks/peers/
  bambi_child.py``);
- **lme4** (R): ``glm`` for the naive model and ``glmer`` (Laplace) for the multilevel and Mundlak models,
  point estimates and standard errors (``benchmarks/peers/lme4.R``);
- **brms** with rstan (R): the multilevel and Mundlak models, same chains and draws, then ``loo``
  (``benchmarks/peers/brms.R``); by default on the seed study only (``--brms-sizes`` to try larger);

and groupfx: ``groupfx.fit`` of each model in a fresh process, and on the seed study the whole study as a
user runs it (``groupfx.fit_all`` of the four models plus the LOO comparison; and the ``groupfx fit`` command
with its report). R rows are skipped with a note where ``Rscript`` or the R package is missing; nothing in
the project needs R.

Every run is a child process timed from outside (wall time), its peak memory read from the kernel when it
is reaped (``ru_maxrss``, through a small launcher process: the largest single process of the run) and
sampled meanwhile (the sum over its process group); a run past ``--timeout`` or over ``--mem-cap-gib`` is
killed and becomes a row saying so, as does any other failure.

Usage: ``python benchmarks/peers_bench.py [--sizes seed,100k] [--only groupfx,bambi,glmer,brms] [--models
...] [--merge] [--timeout 3600]``; ``--sizes tiny`` (2,000 units, 2 chains x 200 draws) for a quick check,
``1m`` (1,000,000 units in 10,000 groups, the Mundlak model) optional. Writes ``benchmarks/peers_results.md``
and ``.json``; ``--merge`` keeps the rows of the last JSON that this run does not redo; ``--render`` rewrites
the page from the JSON alone.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from groupfx.util.files import atomic_path
from machine import widest

HERE = Path(__file__).resolve().parent
PEERS = HERE / "peers"
REQUIREMENTS = HERE / "peers-requirements.txt"
DEFAULT_VENV = HERE / ".peers-venv"
DEFAULT_OUT = HERE / "peers_results.md"

MODELS = ("naive", "fixed", "multilevel", "mundlak")
LABELS = {"naive": "Naive", "fixed": "Fixed effects", "multilevel": "Multilevel", "mundlak": "Mundlak"}
EFFECTS = ("bxy", "bzy", "buy")
EFFECT_NAMES = {"bxy": "bxy (x)", "bzy": "bzy (z)", "buy": "buy (xbar, contextual)"}
TRUTH = {"bxy": 0.0, "bzy": 1.0}
TOOLS = ("groupfx", "bambi", "glmer", "brms")
TOOL_LABELS = {
    "groupfx": "groupfx",
    "bambi": "Bambi + nutpie",
    "glmer": "lme4 (glm / glmer)",
    "brms": "brms (rstan)",
    "groupfx-cli": "groupfx fit (command, report included)",
}
TOOL_MODELS = {
    "groupfx": MODELS,
    "bambi": MODELS,
    "glmer": ("naive", "multilevel", "mundlak"),
    "brms": ("multilevel", "mundlak"),
}
POINT_ESTIMATES = ("glmer",)
GROUP_TERMS = ("fixed", "multilevel", "mundlak")
"""Models whose Bambi formula has a group factor (formulae builds it as a dense units x groups matrix)."""
BRMS_NOTE = (
    "brms runs on the seed study only by default: at 100,000 units a Mundlak fit did not finish in 12.5"
    " minutes before; `--brms-sizes seed,100k` tries larger"
)


@dataclass(frozen=True)
class Size:
    """One data set of the comparison and the sampler settings it runs with by default."""

    name: str
    units: int
    groups: int
    seed: int = 42
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    models: tuple[str, ...] = MODELS

    @property
    def title(self) -> str:
        return f"{self.units:,} units in {self.groups:,} groups"


SIZES = {
    "tiny": Size("tiny", 2_000, 20, seed=7, draws=200, tune=200, chains=2),
    "seed": Size("seed", 2_000, 30),  # groupfx demo's data: --units 2000 --groups 30 --seed 42
    "100k": Size("100k", 100_000, 1_000),
    "1m": Size("1m", 1_000_000, 10_000, models=("mundlak",)),
}


# ------------------------------------------------------------------------------------------------------
# The machine
# ------------------------------------------------------------------------------------------------------


def describe_machine(cpuinfo: str, meminfo: str, cores: int | None, python: str, system: str) -> dict:
    """The machine from the text of ``/proc/cpuinfo`` and ``/proc/meminfo``.

    Returns the CPU model, which of avx2, avx512f and fma its flags list, the core count, the memory in
    GiB, the Python version and the system; a field the text lacks is ``"unknown"`` (``None`` for memory).
    """
    model, flags = "unknown", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown":
            model = " ".join(value.split())
        elif key == "flags" and not flags:
            flags = set(value.split())
    memory = None
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            memory = int(line.split()[1]) / 2**20  # kB -> GiB
    return {
        "cpu": model,
        "vector_extensions": {name: name in flags for name in ("avx2", "avx512f", "fma")},
        "cores": cores,
        "memory_gib": memory,
        "python": python,
        "system": system,
    }


@functools.cache  # every row names the machine: read /proc once a run
def current_machine() -> dict:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    return describe_machine(
        read("/proc/cpuinfo"),
        read("/proc/meminfo"),
        os.cpu_count(),
        platform.python_version(),
        f"{platform.system()} {platform.machine()}",
    )


def machine_line(machine: dict) -> str:
    """One sentence naming the machine."""
    ext = machine.get("vector_extensions", {})
    listed = ", ".join(f"{name} {'yes' if has else 'no'}" for name, has in ext.items()) or "unknown"
    memory = machine.get("memory_gib")
    memory_text = f"{memory:.1f} GiB memory" if memory else "memory unknown"
    return (
        f"{machine.get('cpu', 'unknown CPU')} ({listed}), {machine.get('cores')} cores, {memory_text},"
        f" {machine.get('system', '')}, Python {machine.get('python', '?')}"
    )


def machine_short(machine: dict) -> str:
    """The CPU and its widest vector extension, e.g. ``AMD EPYC 9B14, AVX2``: what a row names."""
    ext = machine.get("vector_extensions", {})
    found = [name for name, has in ext.items() if has]
    return f"{machine.get('cpu', 'unknown CPU')}, {widest(found) if ext else '?'}"


def groupfx_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("groupfx", "pymc", "pytensor", "nutpie", "numba", "arviz", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


# ------------------------------------------------------------------------------------------------------
# Running a child and measuring it
# ------------------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """What the parent saw of one child process."""

    returncode: int | None
    wall_s: float
    peak_rss_mib: float | None
    tree_peak_mib: float
    killed: str | None = None


def group_rss_mib(pgid: int) -> float:
    """Resident memory (MiB) of every process in process group ``pgid``, from ``/proc``."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            total += int(fields[21]) * page  # rss, in pages
    return total / 2**20


LAUNCHER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[2:]).returncode\n"
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code if code >= 0 else 128 - code)\n"
)
"""A small process between this one and the measured command: a process forked from this (large) one would
carry this one's resident size into its ``ru_maxrss`` across ``exec``; one forked from the launcher starts
from the launcher's few MiB. It writes the largest ``ru_maxrss`` of its children (KiB) into a file."""


def measure(command: list[str], *, timeout: float, mem_cap_mib: float, log: Path) -> Measured:
    """Run ``command`` in a process group of its own, its output into ``log``; kill the group past
    ``timeout`` seconds or ``mem_cap_mib`` of resident memory (sampled every quarter second)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    rss_file = log.with_suffix(".maxrss")
    rss_file.unlink(missing_ok=True)
    start = time.perf_counter()
    with open(log, "wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER, str(rss_file), *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    killed, tree_peak = None, 0.0
    while child.poll() is None:
        rss = group_rss_mib(child.pid)
        tree_peak = max(tree_peak, rss)
        elapsed = time.perf_counter() - start
        if killed is None and elapsed > timeout:
            killed = f"timed out after {timeout:.0f} s (--timeout)"
        elif killed is None and rss > mem_cap_mib:
            killed = f"killed at {rss / 1024:.1f} GiB resident, over the cap of {mem_cap_mib / 1024:.1f} GiB"
        if killed:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.25)
    wall = time.perf_counter() - start
    try:
        peak = int(rss_file.read_text()) / 1024
    except (OSError, ValueError):
        peak = None  # killed: only the sampled peak is known
    return Measured(child.returncode, wall, peak, max(tree_peak, peak or 0.0), killed)


def log_tail(log: Path, lines: int = 6) -> str:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])[-600:]


# ------------------------------------------------------------------------------------------------------
# Rows
# ------------------------------------------------------------------------------------------------------


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def base_row(kind: str, size: Size, tool: str, model: str, settings: dict) -> dict:
    return {
        "kind": kind,
        "size": size.name,
        "units": size.units,
        "groups": size.groups,
        "tool": tool,
        "model": model,
        **settings,
        "ran": stamp(),
        "load_avg": round(os.getloadavg()[0], 2),  # 1-minute load average as the row is made
        "machine": machine_short(current_machine()),
    }


def failure_row(
    kind: str,
    size: Size,
    tool: str,
    model: str,
    settings: dict,
    reason: str,
    *,
    status: str = "failed",
    measured: Measured | None = None,
) -> dict:
    """A row that says the run failed (or was skipped) and why, with what was measured before it ended."""
    row = base_row(kind, size, tool, model, settings) | {"status": status, "reason": " ".join(reason.split())}
    if measured is not None:
        row |= {
            "wall_s": measured.wall_s,
            "peak_rss_mib": measured.peak_rss_mib,
            "tree_peak_mib": measured.tree_peak_mib,
        }
    return row


def row_key(row: dict) -> tuple:
    return row.get("kind"), row.get("size"), row.get("tool"), row.get("model")


def finish_row(kind, size, tool, model, settings, measured: Measured, log: Path, result: dict | None) -> dict:
    """The row of one child run: its measurements and what it wrote, or a failure row saying why (with the
    sampling numbers of a run that died after sampling, in its LOO)."""
    if measured.killed or measured.returncode != 0 or result is None:
        reason = measured.killed
        if reason is None:
            why = f"exit {measured.returncode}" if measured.returncode != 0 else "no result written"
            reason = f"{why}: {log_tail(log)}"
        if result and result.get("stage") == "loo" and "effects" in result:
            row = failure_row(
                kind, size, tool, model, settings, f"in LOO, after sampling: {reason}", measured=measured
            )
            kept = ("fit_s", "sample_s", "import_s", "divergences", "steps_per_draw", "effects")
            return row | {key: result[key] for key in kept if key in result} | {"sampled": True}
        return failure_row(kind, size, tool, model, settings, reason, measured=measured)
    row = base_row(kind, size, tool, model, settings) | {"status": "ok"}
    row |= {
        "wall_s": measured.wall_s,
        "peak_rss_mib": measured.peak_rss_mib,
        "tree_peak_mib": measured.tree_peak_mib,
    }
    row |= {
        key: result[key]
        for key in (
            "fit_s",
            "sample_s",
            "loo_s",
            "compare_s",
            "study_s",
            "import_s",
            "divergences",
            "steps_per_draw",
            "elpd_loo",
            "warnings",
            "call",
            "models",
            "r_heap_peak_mib",
        )
        if key in result
    }
    if "effects" in result:
        row["effects"] = {key: value for key, value in result["effects"].items() if key in EFFECTS}
    row["estimator"] = "point estimate (se)" if tool in POINT_ESTIMATES else "posterior"
    return row


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------------------------------------
# groupfx's children (run in this interpreter's environment)
# ------------------------------------------------------------------------------------------------------


def summarise_fit(fit) -> dict:
    """Timings, sampler statistics and the effects of one groupfx fit."""
    import arviz as az

    posterior, stats = fit.idata.posterior, fit.idata.sample_stats
    names = [name for name in EFFECTS if name in posterior]
    ess, rhat = az.ess(fit.idata, var_names=names, method="bulk"), az.rhat(fit.idata, var_names=names)
    return {
        "fit_s": fit.timings["compile"] + fit.timings["sample"],
        "sample_s": fit.timings["sample"],
        "loo_s": fit.timings["loo"],
        "elpd_loo": float(fit.loo.elpd_loo),
        "divergences": int(stats["diverging"].sum()),
        "steps_per_draw": float(stats["n_steps"].mean()),
        "effects": {
            name: {
                "term": name,
                "mean": float(posterior[name].mean()),
                "sd": float(posterior[name].std()),
                "ess_bulk": float(ess[name].min()),
                "rhat": float(rhat[name].max()),
            }
            for name in names
        },
    }


def child_groupfx(args: argparse.Namespace) -> dict:
    import groupfx

    data = groupfx.read_data(args.data, y="y", x="x", group="group", z="z")
    settings = {"draws": args.draws, "tune": args.tune, "chains": args.chains, "seed": args.seed}
    if args.study:
        start = time.perf_counter()
        fits = groupfx.fit_all(data, args.models.split(","), warn=False, **settings)
        groupfx.compare(fits)
        return {
            "study_s": time.perf_counter() - start,
            "models": {k: summarise_fit(f) for k, f in fits.items()},
        }
    fit = groupfx.fit(data, args.models, warn=False, **settings)
    return summarise_fit(fit)


# ------------------------------------------------------------------------------------------------------
# Preparing the peers
# ------------------------------------------------------------------------------------------------------


def base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_venv(venv: Path, requirements: Path, python: str, log: Path) -> tuple[Path | None, str]:
    """The peers' virtual environment, made (or remade when the requirements changed) with ``python``.

    Returns its interpreter, or ``None`` and why it could not be made. Quick when it exists: a stamp in it
    holds the hash of the requirements and the Python version it was made for.
    """
    key = hashlib.sha256(requirements.read_bytes() + python.encode()).hexdigest()
    interpreter, stamp_file = venv / "bin" / "python", venv / ".requirements-sha256"
    if interpreter.exists() and stamp_file.exists() and stamp_file.read_text().strip() == key:
        return interpreter, "existing"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        for step in (
            [python, "-m", "venv", "--clear", str(venv)],
            [str(interpreter), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
        ):
            done = subprocess.run(step, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                return (
                    None,
                    f"making the peers' environment failed ({' '.join(step[:4])}...): {log_tail(log)}",
                )
    stamp_file.write_text(key + "\n")
    return interpreter, "made"


def r_status(package: str) -> str | None:
    """None when ``Rscript`` and the R package are there; else why not."""
    if shutil.which("Rscript") is None:
        return "R is not installed (no Rscript; `apt-get install r-cran-lme4 r-cran-brms` adds it)"
    done = subprocess.run(
        ["Rscript", "-e", f"cat(requireNamespace('{package}', quietly = TRUE))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if "TRUE" not in done.stdout:
        return f"the R package {package} is not installed (`apt-get install r-cran-{package}`)"
    return None


def dense_group_bytes(size: Size) -> int:
    """Bytes of the dense units x groups float64 matrix formulae builds for a group factor."""
    return size.units * size.groups * 8


# ------------------------------------------------------------------------------------------------------
# The runs
# ------------------------------------------------------------------------------------------------------


class Runner:
    """Runs the children of one invocation and collects their rows."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rows: list[dict] = []
        self.versions: dict[str, dict] = {}
        self.mem_cap_mib = args.mem_cap_gib * 1024
        self.warmed = False

    def settings(self, size: Size) -> dict:
        a = self.args
        return {
            "draws": a.draws or size.draws,
            "tune": a.tune or size.tune,
            "chains": a.chains or size.chains,
            "seed": size.seed,
        }

    def add(self, row: dict) -> None:
        self.rows.append(row)
        shown = {
            k: row.get(k) for k in ("size", "tool", "model", "status", "wall_s", "peak_rss_mib", "reason")
        }
        print(json.dumps({k: v for k, v in shown.items() if v is not None}), flush=True)

    def run(self, kind, size, tool, model, command, workdir: Path, *, writes_json: bool = True) -> dict:
        """Run one child (``--json PATH`` appended when it writes its result there) and add its row."""
        settings = self.settings(size)
        result_path = workdir / f"{tool}-{model}.json"
        result_path.unlink(missing_ok=True)
        log = workdir / f"{tool}-{model}.log"
        print(f"[{size.name}] {tool} {model} ...", flush=True)
        measured = measure(
            [*command, "--json", str(result_path)] if writes_json else command,
            timeout=self.args.timeout,
            mem_cap_mib=self.mem_cap_mib,
            log=log,
        )
        result = read_json(result_path) if writes_json else {}
        if result and "versions" in result:
            self.versions[tool] = result["versions"]
        if result and kind == "model" and model in result.get("models", {}):
            result = result | result.pop("models")[model]  # the Bambi child's one model
        row = finish_row(kind, size, tool, model, settings, measured, log, result)
        self.add(row)
        return row

    # -- data ----------------------------------------------------------------------------------------

    def write_data(self, size: Size) -> Path:
        import groupfx

        workdir = self.args.work / size.name
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "data.csv"
        frame = groupfx.simulate(n_groups=size.groups, n_units=size.units, seed=size.seed).to_frame()
        with atomic_path(path) as tmp:
            frame[["group", "x", "y", "z"]].to_csv(tmp, index=False)
        return path

    # -- each tool -----------------------------------------------------------------------------------

    def sampler_args(self, size: Size) -> list[str]:
        s = self.settings(size)
        return [
            "--draws",
            str(s["draws"]),
            "--tune",
            str(s["tune"]),
            "--chains",
            str(s["chains"]),
            "--seed",
            str(s["seed"]),
        ]

    def groupfx(self, size: Size, models: list[str], data: Path) -> None:
        workdir = data.parent
        child = [
            sys.executable,
            __file__,
            "--child",
            "groupfx",
            "--data",
            str(data),
            *self.sampler_args(size),
        ]
        if not self.warmed:  # numba's disk cache, as an installed groupfx has it after its first run
            print("groupfx warm-up (not measured) ...", flush=True)
            warm = [
                *child,
                "--models",
                ",".join(MODELS),
                "--study",
                "--draws",
                "20",
                "--tune",
                "20",
                "--chains",
                "1",
            ]
            measure(
                [*warm, "--json", str(workdir / "warm-up.json")],
                timeout=self.args.timeout,
                mem_cap_mib=self.mem_cap_mib,
                log=workdir / "warm-up.log",
            )
            self.warmed = True
        for model in models:
            self.run("model", size, "groupfx", model, [*child, "--models", model], workdir)
        if self.args.study and size.name in ("seed", "tiny"):
            self.run(
                "study", size, "groupfx", "study", [*child, "--models", ",".join(models), "--study"], workdir
            )
            report = workdir / "groupfx-report"
            command = [
                str(Path(sys.executable).with_name("groupfx")),
                "fit",
                str(data),
                "--y",
                "y",
                "--x",
                "x",
                "--group",
                "group",
                "--z",
                "z",
                "--models",
                ",".join(models),
                "--out",
                str(report),
                *self.sampler_args(size),
            ]
            self.run("study", size, "groupfx-cli", "study", command, workdir, writes_json=False)
        self.versions["groupfx"] = groupfx_versions()

    def bambi(self, size: Size, models: list[str], data: Path) -> None:
        settings, workdir = self.settings(size), data.parent
        python, how = ensure_venv(self.args.venv, REQUIREMENTS, self.args.peers_python, workdir / "venv.log")
        if python is None:
            for model in models:
                self.add(failure_row("model", size, "bambi", model, settings, how))
            return
        child = [str(python), str(PEERS / "bambi_child.py"), "--data", str(data), *self.sampler_args(size)]
        runnable = []
        for model in models:
            need = dense_group_bytes(size)
            if model in GROUP_TERMS and need > self.mem_cap_mib * 2**20:
                reason = (
                    f"not run: formulae builds the group factor as a dense {size.units:,} x {size.groups:,}"
                    f" matrix, {need / 2**30:.0f} GiB in float64, over the memory cap of"
                    f" {self.args.mem_cap_gib:g} GiB (this machine has"
                    f" {current_machine()['memory_gib']:.0f} GiB)"
                )
                self.add(failure_row("model", size, "bambi", model, settings, reason))
                continue
            runnable.append(model)
            self.run("model", size, "bambi", model, [*child, "--models", model], workdir)
        if self.args.study and size.name in ("seed", "tiny") and runnable:
            self.run("study", size, "bambi", "study", [*child, "--models", ",".join(runnable)], workdir)

    def r_peer(self, size: Size, models: list[str], data: Path, tool: str) -> None:
        settings, workdir = self.settings(size), data.parent
        package = "lme4" if tool == "glmer" else "brms"
        missing = r_status(package)
        if tool == "brms" and size.name not in self.args.brms_sizes:
            missing = missing or BRMS_NOTE
        for model in models:
            if missing:
                self.add(failure_row("model", size, tool, model, settings, missing, status="skipped"))
                continue
            command = [
                "Rscript",
                str(PEERS / f"{package}.R"),
                "--here",
                str(PEERS),
                "--data",
                str(data),
                "--model",
                model,
            ]
            if tool == "brms":
                cores = min(settings["chains"], os.cpu_count() or 1)
                command += [*self.sampler_args(size), "--cores", str(cores)]
            self.run("model", size, tool, model, command, workdir)

    def all(self) -> None:
        for name in self.args.sizes:
            size = SIZES[name]
            data = self.write_data(size)
            for tool in self.args.only:
                models = [m for m in (self.args.models or size.models) if m in TOOL_MODELS[tool]]
                if not models:
                    continue
                if tool == "groupfx":
                    self.groupfx(size, models, data)
                elif tool == "bambi":
                    self.bambi(size, models, data)
                else:
                    self.r_peer(size, models, data, tool)


# ------------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------------


def fmt(value, digits: int = 0) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def ess_per_s(row: dict, effect: str) -> float | None:
    e = row.get("effects", {}).get(effect, {})
    if "ess_bulk" not in e or not row.get("fit_s"):
        return None
    return e["ess_bulk"] / row["fit_s"]


def ratio(a, b, digits: int = 2) -> str:
    if a is None or b is None or b == 0:
        return ""
    return f"{a / b:.{digits}f}"


def max_rhat(row: dict) -> float | None:
    values = [e["rhat"] for e in row.get("effects", {}).values() if e.get("rhat") is not None]
    return max(values) if values else None


def status_text(row: dict) -> str:
    if row.get("status") == "ok":
        return "ok"
    return f"{row.get('status', 'failed')}: {row.get('reason', '')}"


def model_order(row: dict) -> tuple:
    tools = (*TOOLS, "groupfx-cli")
    sizes = list(SIZES)
    return (
        sizes.index(row["size"]) if row.get("size") in sizes else 99,
        MODELS.index(row["model"]) if row.get("model") in MODELS else 99,
        tools.index(row["tool"]) if row.get("tool") in tools else 99,
    )


def has_draws(row: dict) -> bool:
    """Whether the row has its fit's numbers: a run that finished, or one that died after sampling."""
    return row.get("status") == "ok" or bool(row.get("sampled"))


def cost_table(rows: list[dict]) -> list[str]:
    lines = [
        "| model | tool | status | fit (s) | LOO (s) | process wall (s) | peak RSS (MiB) | steps per draw"
        " | divergences | ESS bxy | ESS/s bxy | ESS bzy | ESS/s bzy | ESS buy | ESS/s buy | max R-hat |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cells = [LABELS.get(r["model"], r["model"]), TOOL_LABELS.get(r["tool"], r["tool"]), status_text(r)]
        if not has_draws(r):
            cells += ["", "", fmt(r.get("wall_s"), 1), fmt(r.get("peak_rss_mib")), *[""] * 10]
        else:
            cells += [
                fmt(r.get("fit_s"), 1),
                fmt(r.get("loo_s"), 1),
                fmt(r.get("wall_s"), 1),
                fmt(r.get("peak_rss_mib")),
                fmt(r.get("steps_per_draw"), 1),
                "" if r["tool"] in POINT_ESTIMATES else fmt(r.get("divergences")),
            ]
            for effect in EFFECTS:
                e = r.get("effects", {}).get(effect, {})
                cells += [fmt(e.get("ess_bulk")), fmt(ess_per_s(r, effect), 1)]
            cells.append(fmt(max_rhat(r), 3))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def estimates_table(rows: list[dict], tools: list[str]) -> list[str]:
    lines = [
        "| model | effect | truth | " + " | ".join(TOOL_LABELS[t] for t in tools) + " |",
        "|---|---|---:|" + "---:|" * len(tools),
    ]
    by = {(r["model"], r["tool"]): r for r in rows if has_draws(r)}
    for model in MODELS:
        for effect in EFFECTS:
            cells = []
            for tool in tools:
                e = by.get((model, tool), {}).get("effects", {}).get(effect)
                cells.append(f"{e['mean']:.3f} ({e['sd']:.3f})" if e else "")
            if any(cells):
                truth = f"{TRUTH[effect]:g}" if effect in TRUTH else ""
                lines.append(
                    f"| {LABELS[model]} | {EFFECT_NAMES[effect]} | {truth} | " + " | ".join(cells) + " |"
                )
    return lines


def same_machine(a: dict, b: dict) -> bool:
    """Whether two rows ran on the same machine (rows from before rows named theirs count as one)."""
    return a.get("machine") == b.get("machine")


def machines_line(rows: list[dict]) -> list[str]:
    """Which tools' rows ran on which machine, where a size's rows span more than one."""
    by_machine: dict[str, list[str]] = {}
    for r in rows:
        tools = by_machine.setdefault(r.get("machine") or "a machine not recorded", [])
        label = TOOL_LABELS.get(r["tool"], r["tool"])
        if label not in tools:
            tools.append(label)
    if len(by_machine) < 2:
        return [f"Measured on {next(iter(by_machine))}.", ""] if by_machine else []
    parts = "; ".join(f"{', '.join(tools)} on {machine}" for machine, tools in by_machine.items())
    return [
        f"Measured on more than one machine: {parts}. Ratios are given only between rows of one machine.",
        "",
    ]


def ratio_table(rows: list[dict]) -> list[str]:
    lines = [
        "| model | peer | fit time | peak RSS | ESS/s bxy | ESS/s bzy | ESS/s buy | steps per draw |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    ours = {r["model"]: r for r in rows if r["tool"] == "groupfx" and r.get("status") == "ok"}
    for r in rows:
        g = ours.get(r["model"])
        if r["tool"] == "groupfx" or not has_draws(r) or g is None or not same_machine(g, r):
            continue
        sampled = r["tool"] not in POINT_ESTIMATES
        cells = [
            LABELS[r["model"]],
            TOOL_LABELS[r["tool"]],
            ratio(g.get("fit_s"), r.get("fit_s")),
            ratio(g.get("peak_rss_mib"), r.get("peak_rss_mib")),
        ]
        for effect in EFFECTS:
            cells.append(ratio(ess_per_s(g, effect), ess_per_s(r, effect)) if sampled else "")
        cells.append(ratio(g.get("steps_per_draw"), r.get("steps_per_draw")) if sampled else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines if len(lines) > 2 else []


def study_table(rows: list[dict]) -> list[str]:
    lines = [
        "| tool | what | status | wall (s) | peak RSS, largest process (MiB)"
        " | peak RSS, all processes (MiB) |",
        "|---|---|---|---:|---:|---:|",
    ]
    what = {
        "groupfx": "`groupfx.fit_all` of the models in worker processes, then `groupfx.compare`",
        "groupfx-cli": "`groupfx fit data.csv ... --models ...`: the fits, the LOO comparison and the whole"
        " report",
        "bambi": "the models one after another in one process, each with its LOO, then `az.compare`",
    }
    for r in rows:
        lines.append(
            f"| {TOOL_LABELS.get(r['tool'], r['tool'])} | {what.get(r['tool'], '')} | {status_text(r)}"
            f" | {fmt(r.get('wall_s'), 1)} | {fmt(r.get('peak_rss_mib'))} | {fmt(r.get('tree_peak_mib'))} |"
        )
    groupfx = next((r for r in rows if r["tool"] == "groupfx" and r.get("status") == "ok"), None)
    bambi = next((r for r in rows if r["tool"] == "bambi" and r.get("status") == "ok"), None)
    if groupfx and bambi and same_machine(groupfx, bambi):
        lines += [
            "",
            f"Whole study, groupfx / Bambi: wall time {ratio(groupfx['wall_s'], bambi['wall_s'])},"
            f" peak RSS (all processes) {ratio(groupfx['tree_peak_mib'], bambi['tree_peak_mib'])}.",
        ]
    return lines


def brms_notes(rows: list[dict]) -> list[str]:
    """What brms's peak RSS is made of: R's own heap peak beside the largest process."""
    notes = [
        f"{LABELS[r['model']]}: R's heap (gc) peaked at {r['r_heap_peak_mib']:,.0f} MiB"
        for r in rows
        if r["tool"] == "brms" and r.get("status") == "ok" and r.get("r_heap_peak_mib")
    ]
    if not notes:
        return []
    return [
        "",
        "brms: " + "; ".join(notes) + ". The peak RSS above is the largest process of the run, most likely"
        " the C++ compiler building the Stan program (rstan compiles each model with g++).",
    ]


def versions_lines(versions: dict) -> list[str]:
    lines = []
    for tool in ("groupfx", "bambi", "glmer", "brms"):
        if tool in versions:
            listed = ", ".join(f"{k} {v}" for k, v in versions[tool].items())
            lines.append(f"- {TOOL_LABELS[tool]}: {listed}")
    return lines


def command_lines(payload: dict) -> list[str]:
    """The commands that made the page, each with the machine it ran on where the JSON says."""
    commands = payload.get("commands", ["python benchmarks/peers_bench.py"])
    machines = payload.get("command_machines", [])
    machines = [None] * (len(commands) - len(machines)) + list(machines)
    return [f"- `{c}`" + (f" (on {m})" if m else "") for c, m in zip(commands, machines, strict=True)]


def render(payload: dict) -> str:
    """The markdown page of a results JSON (``machine``, ``versions``, ``command``, ``rows``)."""
    rows = payload.get("rows", [])
    lines = [
        "# groupfx beside its peers: Bambi + nutpie, lme4, brms",
        "",
        f"Table written {payload.get('written', '')} (each row's own run time in the JSON) by:",
        "",
        *command_lines(payload),
        "",
        f"Machine of the latest run: {machine_line(payload.get('machine', {}))}.",
        "",
        "Versions:",
        *versions_lines(payload.get("versions", {})),
        "",
        "Every peer fits the same rows (one CSV per size, simulated with `groupfx.simulate` from the seed's",
        "graph: Bernoulli y, unit-level x, group-level z, group confounder U; truth bxy = 0, bzy = 1), each",
        "model in a fresh process. **fit** is the seconds from building the model to its posterior (or",
        "estimate) in hand: compilation included (nutpie's numba compilation of Bambi's PyMC graph, Stan's",
        "C++ compilation for brms, groupfx's cached kernels), imports and reading the table excluded;",
        "**LOO** the log-likelihood and PSIS-LOO after it; **process wall** the whole child process,",
        "imports included.",
        "**ESS/s** is bulk ESS per second of fit. **peak RSS** is the largest single process of the run",
        "(`ru_maxrss` of the child). **steps per draw** is nutpie's `n_steps` (Stan's `n_leapfrog__`).",
        "Bambi's fixed-effects formula is `y ~ 0 + x + C(group)`: z is constant within groups, a linear",
        "combination of the group dummies, so a Bambi user drops it (groupfx keeps bzy, unidentified, under",
        "its prior). Priors are each tool's defaults (Bambi's and brms's weakly informative or flat ones,",
        "groupfx's of the seed), so the posteriors differ a little, and in one place a lot: Bambi's default",
        "prior on each group dummy of `y ~ 0 + x + C(group)` is Normal(0, 1) (as `print(bmb.Model(...))`",
        "shows), against groupfx's Normal(0, 10) on the free intercepts; the intercepts here are near",
        "a0 + U (a0 = -2, U's sd 1.5), so that prior pulls them in and part of U passes into Bambi's",
        "fixed-effects bxy. lme4 gives point estimates (Laplace for glmer) with standard errors, shown in",
        "place of the posterior mean and sd.",
    ]
    for name in [s for s in SIZES if any(r.get("size") == s for r in rows)]:
        size_rows = sorted((r for r in rows if r.get("size") == name), key=model_order)
        sample = size_rows[0]
        lines += [
            "",
            f"## {name}: {sample['units']:,} units in {sample['groups']:,} groups",
            "",
            f"{sample['chains']} chains x ({sample['tune']} tune + {sample['draws']} draws),"
            f" seed {sample['seed']}.",
            "",
        ]
        loads = [r["load_avg"] for r in size_rows if r.get("load_avg") is not None]
        if loads:
            lines += [
                f"1-minute load average as each run ended: {min(loads):.1f} to {max(loads):.1f} on"
                f" {payload.get('machine', {}).get('cores', '?')} cores (other work shared the machine: times"
                " above a load of the core count are stretched for every tool alike).",
                "",
            ]
        lines += machines_line(size_rows)
        models = [r for r in size_rows if r.get("kind") == "model"]
        lines += cost_table(models)
        tools = [t for t in TOOLS if any(r["tool"] == t and has_draws(r) for r in models)]
        if tools:
            lines += ["", "Posterior mean (sd); for lme4 estimate (se):", "", *estimates_table(models, tools)]
        lines += brms_notes(models)
        ratios = ratio_table(models)
        if ratios:
            lines += [
                "",
                "Ratios groupfx / peer (fit time and memory: below 1 is groupfx's gain; ESS/s: above 1 is):",
                "",
                *ratios,
            ]
        studies = [r for r in size_rows if r.get("kind") == "study"]
        if studies:
            lines += [
                "",
                "The whole study (the models and their LOO comparison), as a user runs it:",
                "",
                *study_table(studies),
            ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------------


def merge_rows(previous: list[dict], new: list[dict]) -> list[dict]:
    """The new rows, and those of ``previous`` that they do not redo."""
    redone = {row_key(r) for r in new}
    return [r for r in previous if row_key(r) not in redone] + new


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="seed,100k", help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument(
        "--only", default=",".join(TOOLS), help=f"tools, comma-separated, of {', '.join(TOOLS)}"
    )
    parser.add_argument("--models", default=None, help="models, comma-separated (default: each size's)")
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (default: the size's)")
    parser.add_argument("--tune", type=int, default=None)
    parser.add_argument("--chains", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per run before it is killed")
    parser.add_argument(
        "--mem-cap-gib", type=float, default=16.0, help="resident memory at which a run is killed"
    )
    parser.add_argument("--brms-sizes", default="seed,tiny", help="sizes brms runs on (it is slow)")
    parser.add_argument("--no-study", dest="study", action="store_false", help="skip the whole-study rows")
    parser.add_argument(
        "--merge", action="store_true", help="keep the last JSON's rows this run does not redo"
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the peers' virtual environment")
    parser.add_argument("--peers-python", default=base_python(), help="Python that makes the peers' venv")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=HERE / "out" / "peers")
    parser.add_argument("--render", action="store_true", help="only rewrite the page from the JSON")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=42, help=argparse.SUPPRESS)
    parser.add_argument("--study", dest="study_child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    args.sizes = [s for s in args.sizes.split(",") if s]
    args.only = [t for t in args.only.split(",") if t]
    args.brms_sizes = [s for s in args.brms_sizes.split(",") if s]
    args.models = [m for m in args.models.split(",") if m] if args.models else None
    for value, allowed, what in (
        (args.sizes, SIZES, "size"),
        (args.only, TOOLS, "tool"),
        (args.models or [], MODELS, "model"),
    ):
        for item in value:
            if item not in allowed:
                parser.error(f"unknown {what} {item!r}; use {', '.join(allowed)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        warnings.filterwarnings("ignore")
        args.study = args.study_child
        result = child_groupfx(args)
        result["peak_self_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result), encoding="utf-8")
        return 0
    json_path = args.out.with_suffix(".json")
    if args.render:
        payload = read_json(json_path)
        if payload is None:
            print(f"peers_bench: error: no results JSON at {json_path}", file=sys.stderr)
            return 2
        with atomic_path(args.out) as tmp:
            tmp.write_text(render(payload), encoding="utf-8")
        print(f"wrote {args.out}")
        return 0
    runner = Runner(args)
    runner.all()
    rows, versions = runner.rows, runner.versions
    command = "python benchmarks/peers_bench.py " + " ".join(argv if argv is not None else sys.argv[1:])
    commands = [command.strip()]
    machine = current_machine()
    command_machines = [machine_short(machine)]
    previous = read_json(json_path) if args.merge else None
    if previous:
        rows = merge_rows(previous.get("rows", []), rows)
        versions = previous.get("versions", {}) | versions
        earlier = previous.get("commands") or ([previous["command"]] if "command" in previous else [])
        commands = earlier + commands
        known = previous.get("command_machines", [])
        command_machines = [None] * (len(earlier) - len(known)) + known + command_machines
    payload = {
        "written": stamp(),
        "commands": commands,
        "command_machines": command_machines,
        "machine": machine,
        "versions": versions,
        "rows": sorted(rows, key=model_order),
    }
    for path, text in ((json_path, json.dumps(payload, indent=1)), (args.out, render(payload))):
        with atomic_path(path) as tmp:
            tmp.write_text(text + ("\n" if not text.endswith("\n") else ""), encoding="utf-8")
    print(f"wrote {args.out} and {json_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
