"""The peers benchmark's pure parts: the machine, failure rows, merging and the table (no sampling, no R,
no network, nothing installed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "peers_bench.py"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(SCRIPT.parent))  # peers_bench imports its sibling machine.py, as a script does
    try:
        spec = importlib.util.spec_from_file_location("peers_bench", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["peers_bench"] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(SCRIPT.parent))
    yield module
    sys.modules.pop("peers_bench", None)


CPUINFO = """processor\t: 0
model name\t: AMD EPYC 9B14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 fma bmi2
processor\t: 1
model name\t: ignored second core
flags\t\t: avx512f
"""
MEMINFO = "MemTotal:       24576000 kB\nMemFree:        1000 kB\n"


def effect(mean, sd, ess=None, rhat=None):
    out = {"mean": mean, "sd": sd}
    if ess is not None:
        out |= {"ess_bulk": ess, "rhat": rhat}
    return out


def ok_row(bench, tool, model, fit_s, ess=1000.0, steps=10.0, size="seed"):
    row = bench.base_row(
        "model", bench.SIZES[size], tool, model, {"draws": 1000, "tune": 1000, "chains": 4, "seed": 42}
    )
    effects = {"bxy": effect(0.1, 0.07, ess, 1.001), "bzy": effect(0.9, 0.1, ess / 2, 1.002)}
    if model == "mundlak":
        effects["buy"] = effect(0.8, 0.09, ess / 4, 1.003)
    if tool == "glmer":
        effects = {k: {"mean": v["mean"], "sd": v["sd"]} for k, v in effects.items()}
    return row | {
        "status": "ok",
        "fit_s": fit_s,
        "loo_s": 1.0,
        "wall_s": fit_s + 5,
        "peak_rss_mib": 500.0,
        "tree_peak_mib": 600.0,
        "steps_per_draw": None if tool == "glmer" else steps,
        "divergences": 0,
        "effects": effects,
    }


def test_machine_from_proc_text(bench):
    machine = bench.describe_machine(CPUINFO, MEMINFO, 2, "3.11.7", "Linux x86_64")
    assert machine["cpu"] == "AMD EPYC 9B14 96-Core Processor"
    # the first core's flags: avx512f appears only on the second and is not taken
    assert machine["vector_extensions"] == {"avx2": True, "avx512f": False, "fma": True}
    assert machine["memory_gib"] == pytest.approx(24576000 / 2**20)
    line = bench.machine_line(machine)
    assert "AMD EPYC 9B14" in line and "avx2 yes, avx512f no, fma yes" in line
    assert "2 cores" in line and "23.4 GiB" in line and "Python 3.11.7" in line


def test_machine_without_proc_files(bench):
    machine = bench.describe_machine("", "", None, "3.11.7", "Linux")
    assert machine["cpu"] == "unknown"
    assert machine["memory_gib"] is None
    assert not any(machine["vector_extensions"].values())
    assert "memory unknown" in bench.machine_line(machine)


def test_failure_row_says_why(bench):
    size = bench.SIZES["1m"]
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "seed": 42}
    row = bench.failure_row("model", size, "bambi", "mundlak", settings, "not run:\n  dense   matrix")
    assert row["status"] == "failed" and row["reason"] == "not run: dense matrix"
    assert (row["units"], row["groups"]) == (1_000_000, 10_000)
    measured = bench.Measured(
        returncode=-9,
        wall_s=12.0,
        peak_rss_mib=None,
        tree_peak_mib=900.0,
        killed="timed out after 10 s (--timeout)",
    )
    timed_out = bench.finish_row(
        "model", size, "bambi", "naive", settings, measured, Path("/nonexistent"), None
    )
    assert timed_out["status"] == "failed" and "timed out" in timed_out["reason"]
    assert timed_out["wall_s"] == 12.0 and timed_out["tree_peak_mib"] == 900.0
    crashed = bench.Measured(returncode=1, wall_s=3.0, peak_rss_mib=100.0, tree_peak_mib=100.0)
    row = bench.finish_row("model", size, "glmer", "naive", settings, crashed, Path("/nonexistent"), None)
    assert row["status"] == "failed" and row["reason"].startswith("exit 1")
    text = bench.render({"rows": [timed_out, row], "machine": {}, "versions": {}})
    assert "| Naive | Bambi + nutpie | failed: timed out after 10 s (--timeout) |" in text
    assert "failed: exit 1" in text


def test_dense_group_precheck_size(bench):
    # the 1m size's group factor as formulae builds it: 1e6 x 1e4 doubles = 80 GB, over any cap here
    assert bench.dense_group_bytes(bench.SIZES["1m"]) == 80_000_000_000
    assert bench.dense_group_bytes(bench.SIZES["seed"]) == 2_000 * 30 * 8


def test_table_from_json(bench):
    rows = [
        ok_row(bench, "groupfx", "mundlak", fit_s=2.0, ess=4000),
        ok_row(bench, "bambi", "mundlak", fit_s=40.0, ess=2000, steps=20.0),
        ok_row(bench, "glmer", "mundlak", fit_s=1.0),
        bench.failure_row(
            "model",
            bench.SIZES["seed"],
            "brms",
            "mundlak",
            {"draws": 1000, "tune": 1000, "chains": 4, "seed": 42},
            "R is not installed",
            status="skipped",
        ),
    ]
    text = bench.render(
        {
            "rows": rows,
            "machine": {"cpu": "Test CPU", "cores": 2},
            "versions": {"groupfx": {"groupfx": "0.1.0"}, "bambi": {"bambi": "0.17.2", "nutpie": "0.16.8"}},
        }
    )
    assert "Test CPU" in text and "bambi 0.17.2, nutpie 0.16.8" in text
    assert "## seed: 2,000 units in 30 groups" in text
    lines = text.splitlines()
    groupfx = next(line for line in lines if line.startswith("| Mundlak | groupfx | ok |"))
    cells = [c.strip() for c in groupfx.strip("|").split("|")]
    # fit, LOO, wall, RSS, steps, divergences, then ESS and ESS/s of bxy, bzy, buy, max R-hat
    assert cells[3:] == [
        "2.0",
        "1.0",
        "7.0",
        "500",
        "10.0",
        "0",
        "4,000",
        "2,000.0",
        "2,000",
        "1,000.0",
        "1,000",
        "500.0",
        "1.003",
    ]
    assert "| Mundlak | brms (rstan) | skipped: R is not installed |" in text
    # estimates side by side, truth beside them; glmer's estimate (se)
    assert "| Mundlak | bxy (x) | 0 | 0.100 (0.070) | 0.100 (0.070) | 0.100 (0.070) |" in text
    # ratios groupfx / Bambi: fit 2/40, memory 1, ESS/s (4000/2)/(2000/40) = 40, steps 10/20
    assert "| Mundlak | Bambi + nutpie | 0.05 | 1.00 | 40.00 | 40.00 | 40.00 | 0.50 |" in text
    # against glmer only time and memory
    assert "| Mundlak | lme4 (glm / glmer) | 2.00 | 1.00 |  |  |  |  |" in text


def test_study_rows_and_ratio(bench):
    size = bench.SIZES["seed"]
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "seed": 42}
    rows = [
        bench.base_row("study", size, tool, "study", settings)
        | {"status": "ok", "wall_s": wall, "peak_rss_mib": 500.0, "tree_peak_mib": peak}
        for tool, wall, peak in (
            ("groupfx", 10.0, 1000.0),
            ("bambi", 100.0, 2000.0),
            ("groupfx-cli", 20.0, 1200.0),
        )
    ]
    text = bench.render({"rows": rows})
    assert "The whole study" in text
    assert "Whole study, groupfx / Bambi: wall time 0.10, peak RSS (all processes) 0.50." in text


def test_merge_keeps_rows_not_redone(bench):
    old = [
        ok_row(bench, "groupfx", "mundlak", fit_s=9.0, ess=100),
        ok_row(bench, "bambi", "mundlak", fit_s=40.0, ess=2000),
        ok_row(bench, "groupfx", "mundlak", fit_s=9.0, ess=100, size="100k"),
    ]
    new = [ok_row(bench, "groupfx", "mundlak", fit_s=2.0, ess=4000)]
    merged = bench.merge_rows(old, new)
    assert len(merged) == 3
    seed_groupfx = [r for r in merged if r["size"] == "seed" and r["tool"] == "groupfx"]
    assert [r["fit_s"] for r in seed_groupfx] == [2.0]
    assert any(r["tool"] == "bambi" for r in merged)
    assert any(r["size"] == "100k" and r["fit_s"] == 9.0 for r in merged)


def test_arguments_checked(bench):
    args = bench.parse_args(["--sizes", "tiny", "--only", "groupfx,glmer", "--models", "mundlak"])
    assert args.sizes == ["tiny"] and args.only == ["groupfx", "glmer"] and args.models == ["mundlak"]
    assert bench.parse_args([]).sizes == ["seed", "100k"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "stata"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--sizes", "huge"])


def test_render_only_rewrites_the_page_from_the_json(bench, tmp_path):
    out = tmp_path / "peers_results.md"
    assert bench.main(["--render", "--out", str(out)]) == 2  # no JSON yet: an error, nothing written
    assert not out.exists()
    rows = [ok_row(bench, "groupfx", "naive", fit_s=1.0), ok_row(bench, "bambi", "naive", fit_s=10.0)]
    payload = {
        "commands": ["python benchmarks/peers_bench.py --sizes seed", "python ... --merge"],
        "rows": rows,
    }
    out.with_suffix(".json").write_text(json.dumps(payload))
    assert bench.main(["--render", "--out", str(out)]) == 0
    text = out.read_text()
    assert "- `python benchmarks/peers_bench.py --sizes seed`" in text and "- `python ... --merge`" in text
    assert "| Naive | Bambi + nutpie | 0.10 |" in text


def test_run_that_dies_in_loo_keeps_its_sampling_numbers(bench):
    size = bench.SIZES["100k"]
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "seed": 42}
    killed = bench.Measured(returncode=-9, wall_s=569.0, peak_rss_mib=None, tree_peak_mib=16_500.0,
                            killed="killed at 16.1 GiB resident, over the cap of 16.0 GiB")  # fmt: skip
    partial = {"stage": "loo", "fit_s": 300.0, "divergences": 0, "steps_per_draw": 4.0,
               "effects": {"bxy": effect(0.63, 0.006, 3000.0, 1.001)}}  # fmt: skip
    row = bench.finish_row("model", size, "bambi", "naive", settings, killed, Path("/nonexistent"), partial)
    assert row["status"] == "failed" and row["reason"].startswith("in LOO, after sampling: killed at 16.1")
    assert row["sampled"] and row["fit_s"] == 300.0 and "loo_s" not in row
    groupfx = ok_row(bench, "groupfx", "naive", fit_s=30.0, ess=3000.0, size="100k")
    text = bench.render({"rows": [groupfx, row]})
    line = next(line for line in text.splitlines() if line.startswith("| Naive | Bambi + nutpie | failed"))
    assert "| 300.0 |  | 569.0 |  | 4.0 | 0 | 3,000 | 10.0 |" in line
    # the posterior is still set beside groupfx's, and the ratios use it (fit 30 / 300; ESS/s 100 / 10)
    assert "| Naive | bxy (x) | 0 | 0.100 (0.070) | 0.630 (0.006) |" in text
    assert "| Naive | Bambi + nutpie | 0.10 |  | 10.00 |" in text
    # a run that died before its sampling was done has nothing but the reason
    early = bench.finish_row("model", size, "bambi", "naive", settings, killed, Path("/nonexistent"), None)
    assert not early.get("sampled") and "effects" not in early


def test_rows_name_their_machine_and_ratios_stay_within_one(bench):
    here = ok_row(bench, "groupfx", "mundlak", fit_s=2.0, ess=4000)
    assert here["machine"] == bench.machine_short(bench.current_machine())
    bambi_here = ok_row(bench, "bambi", "mundlak", fit_s=20.0, ess=1000)
    brms_elsewhere = ok_row(bench, "brms", "mundlak", fit_s=100.0, ess=500) | {"machine": "AMD EPYC, AVX2"}
    text = bench.render({"rows": [here, bambi_here, brms_elsewhere]})
    assert "Measured on more than one machine:" in text
    assert "brms (rstan) on AMD EPYC, AVX2" in text
    ratios = text[text.index("Ratios groupfx / peer") :]
    assert "| Mundlak | Bambi + nutpie | 0.10 |" in ratios
    assert "| Mundlak | brms (rstan) |" not in ratios  # another machine: no ratio


def test_each_command_names_the_machine_it_ran_on(bench):
    payload = {"commands": ["first", "second", "third"], "command_machines": ["A, AVX2", "B, AVX-512"]}
    assert bench.command_lines(payload) == [
        "- `first`",
        "- `second` (on A, AVX2)",
        "- `third` (on B, AVX-512)",
    ]
    machine = {"cpu": "Intel Xeon", "vector_extensions": {"avx2": True, "avx512f": True}}
    assert bench.machine_short(machine) == "Intel Xeon, AVX-512"
    assert bench.machine_short({"cpu": "EPYC", "vector_extensions": {"avx2": True, "avx512f": False}}) == (
        "EPYC, AVX2"
    )
