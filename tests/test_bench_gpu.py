"""benchmarks/gpu_bench.py's planning, choice of the faster way, table and time budget (no JAX, no GPU).

The fits themselves run on the GPU machine (``benchmarks/gpu_check.sh``); here the parent's logic runs with
a child that ends at once, so the files written as rows end and the per-row limit are checked for real.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))  # gpu_bench imports its sibling machine.py, as a script does
    try:
        spec = importlib.util.spec_from_file_location("gpu_bench", BENCHMARKS / "gpu_bench.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_bench"] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def _args(bench, **overrides) -> argparse.Namespace:
    values = {"small": False, "rows": list(bench.DEFAULT_ROWS), "seed": 1, "budget": 420.0, "row_limit": None}
    values |= overrides
    return argparse.Namespace(**values)


def _ok(row, compile_s: float, sample_s: float) -> None:
    row.status = "ok"
    row.result = {
        "build_s": 1.0,
        "jax_compile_s": compile_s,
        "sample_s": sample_s,
        "wall_s": compile_s + sample_s + 20,
        "peak_device_mib": 2048.0,
        "peak_rss_mib": 900.0,
        "rhat": {"bxy": 1.001, "bzy": 1.002},
        "ess_bulk": {"bxy": 1500.0, "bzy": 2500.0},
        "steps_per_draw": 31.0,
        "divergences": 0,
        "parameter_dtypes": [row.precision],
        "device": "gpu (NVIDIA H200)",
        "versions": {"jax": "0.11.2"},
    }


def test_the_default_plan_is_a_million_units_both_ways_then_ten_million_the_faster_way(bench):
    rows = bench.plan(_args(bench))
    assert [(r.model, r.precision, r.way, r.units, r.groups) for r in rows[:5]] == [
        ("mundlak", "float64", "numpyro", 1_000_000, 10_000),
        ("mundlak", "float64", "nutpie", 1_000_000, 10_000),
        ("latent", "float64", "numpyro", 1_000_000, 10_000),
        ("latent", "float64", "nutpie", 1_000_000, 10_000),
        ("mundlak", "float64", "faster", 10_000_000, 100_000),
    ]
    assert all((r.chains, r.tune, r.draws) == (4, 1000, 1000) for r in rows)
    small = bench.plan(_args(bench, small=True))
    assert {r.units for r in small} == {5_000, 20_000} and all(r.chains == 2 for r in small)


@pytest.mark.parametrize(
    "text", ["mundlak:float64", "mundlak:float16:nutpie", "mundlak:float64:stan", "a:b:c:d"]
)
def test_a_malformed_row_is_refused(bench, text):
    with pytest.raises(SystemExit, match=r"gpu_bench\.py"):
        bench.plan(_args(bench, rows=[text]))


def test_the_faster_way_is_the_lower_compile_plus_sampling_time_on_mundlak_float64(bench):
    rows = bench.plan(_args(bench))
    assert bench.faster_way(rows)[0] == "numpyro"  # nothing finished: the whole-chain way, said so
    assert "no Mundlak float64 row finished" in bench.faster_way(rows)[1]
    _ok(rows[0], compile_s=60, sample_s=50)  # numpyro 110 s
    _ok(rows[1], compile_s=5, sample_s=90)  # nutpie 95 s
    _ok(rows[2], compile_s=1, sample_s=1)  # the latent model does not count
    way, why = bench.faster_way(rows)
    assert way == "nutpie"
    assert "numpyro 110 s" in why and "nutpie 95 s" in why


def test_every_table_line_has_the_header_s_cells_whatever_the_row_s_status(bench):
    args = _args(bench)
    rows = bench.plan(args)
    _ok(rows[0], 60, 50)
    rows[1].status, rows[1].note = "timeout", "stopped at its 100 s limit while: sampling"
    rows[2].status, rows[2].note = "failed", "exit 1 after 3 s while: importing: ImportError: no pymc"
    rows[3].status, rows[3].note = "skipped", "time budget spent"
    text = bench.render(args, rows, ["a note"])
    table = [line for line in text.splitlines() if line.startswith("|")]
    widths = {line.count("|") for line in table}
    assert len(widths) == 1, table
    assert "gpu (NVIDIA H200)" in text and "1.001 / 1.002" in text and "2,048" in text
    assert "stopped at its 100 s limit" in text and "- a note" in text


class _Child:
    """Stands in for the child process: runs ``code`` with Python instead of gpu_bench.py's child."""

    def __init__(self, monkeypatch, bench, code: str) -> None:
        real = bench.subprocess.Popen

        def popen(argv, **kwargs):
            return real([sys.executable, "-c", code], **kwargs)

        monkeypatch.setattr(bench.subprocess, "Popen", popen)


def test_a_row_past_its_limit_is_killed_and_noted_with_its_last_phase(bench, monkeypatch, tmp_path):
    _Child(monkeypatch, bench, "import time; print('@phase sampling', flush=True); time.sleep(60)")
    row = bench.plan(_args(bench))[0]
    bench.run_row(row, tmp_path, limit_s=2)
    assert row.status == "timeout"
    assert "2 s limit while: sampling" in row.note


def test_a_failing_row_reports_the_last_line_of_its_log(bench, monkeypatch, tmp_path):
    _Child(monkeypatch, bench, "import sys; print('@phase building', flush=True); sys.exit('no device here')")
    row = bench.plan(_args(bench))[0]
    bench.run_row(row, tmp_path, limit_s=30)
    assert row.status == "failed"
    assert "while: building: no device here" in row.note
    assert (tmp_path / "logs" / f"{row.id}.log").exists()


def test_the_whole_run_writes_both_files_and_skips_rows_once_the_budget_is_spent(
    bench, monkeypatch, tmp_path
):
    result = {"x": 1}
    code = f"import json; print('@result ' + json.dumps({result!r}), flush=True)"
    _Child(monkeypatch, bench, code)
    monkeypatch.setattr(bench, "render", lambda args, rows, notes: "table\n")
    monkeypatch.setattr(bench, "MIN_START_S", 1e9)  # no row may start: every one is skipped, and said so
    assert (
        bench.main(["--out", str(tmp_path), "--rows", "mundlak:float64:nutpie", "latent:float64:faster"]) == 0
    )
    payload = json.loads((tmp_path / "gpu_results.json").read_text())
    assert [row["status"] for row in payload["rows"]] == ["skipped", "skipped"]
    assert payload["rows"][1]["way"] == "numpyro"  # the faster way, with no row to compare, is said
    assert "0 of 2 rows finished" in payload["notes"][-1]
    assert (tmp_path / "gpu_results.md").read_text() == "table\n"


def test_a_finished_row_is_in_both_files_as_soon_as_it_ends(bench, monkeypatch, tmp_path):
    row = bench.plan(_args(bench))[1]
    _ok(row, 5, 90)
    code = (
        f"import json; print('@phase sampling'); print('@result ' + json.dumps({row.result!r}), flush=True)"
    )
    _Child(monkeypatch, bench, code)
    assert bench.main(["--out", str(tmp_path), "--rows", "mundlak:float64:nutpie"]) == 0
    payload = json.loads((tmp_path / "gpu_results.json").read_text())
    assert payload["rows"][0]["status"] == "ok"
    assert payload["rows"][0]["result"]["sample_s"] == 90
    assert (
        "| mundlak | nutpie | float64 | 1,000,000 / 10,000 | 4 x (1000 + 1000) | ok |"
        in (tmp_path / "gpu_results.md").read_text()
    )


def test_the_jax_shim_puts_back_scan_only_where_jax_moved_it(bench, monkeypatch):
    pytest.importorskip("jax")
    import jax
    import jax._src.lax.control_flow as control_flow

    assert bench.jax_compat() == []  # this JAX still has it: nothing touched
    monkeypatch.delattr(control_flow, "scan")
    assert bench.jax_compat() == ["jax._src.lax.control_flow.scan = jax.lax.scan"]
    assert control_flow.scan is jax.lax.scan
