"""benchmarks/machine.py: the line that names the machine in every benchmark table's header."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def machine():
    spec = importlib.util.spec_from_file_location("bench_machine", BENCHMARKS / "machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu sse2 avx512bw fma avx avx2 avx512f avx512_vnni avx512vl avx512dq avx512_bf16
bogomips\t: 4000.00

processor\t: 1
model name\t: Another CPU
flags\t\t: fpu
"""


def test_the_cpu_name_and_its_vector_extensions_come_from_cpuinfo_in_a_fixed_order(machine, tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    assert machine.cpu_name(path) == "Intel(R) Xeon(R) Platinum 8480+"
    assert machine.vector_extensions(path) == [
        "avx",
        "avx2",
        "fma",
        "avx512f",
        "avx512dq",
        "avx512bw",
        "avx512vl",
        "avx512_vnni",
    ]


def test_a_machine_without_cpuinfo_falls_back_to_platform(machine, tmp_path):
    missing = tmp_path / "absent"
    assert machine.cpu_name(missing) == (platform.processor() or platform.machine() or "unknown CPU")
    assert machine.vector_extensions(missing) == []


def test_an_arm_cpuinfo_without_model_name_gives_no_x86_extensions(machine, tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm aes sve\n")
    assert machine.vector_extensions(path) == []
    assert machine.cpu_name(path) == (platform.processor() or platform.machine() or "unknown CPU")


def test_the_llvm_part_names_the_host_cpu_numba_compiles_for(machine):
    llvmlite = pytest.importorskip("llvmlite.binding")
    text = machine.llvm_target()
    assert text.startswith(f"LLVM target {llvmlite.get_host_cpu_name()} (")


def test_describe_is_one_line_with_cores_memory_os_and_python(machine):
    text = machine.describe()
    assert "\n" not in text
    assert f"{os.cpu_count()} cores" in text
    assert f"Python {platform.python_version()}" in text
    assert platform.system() in text
    assert "GiB" in text
    assert machine.cpu_name() in text


@pytest.mark.parametrize(
    "script", ["run.py", "kernel_bench.py", "scale_bench.py", "levers_bench.py", "study_bench.py"]
)
def test_every_benchmark_header_names_the_machine_by_describe(script):
    text = (BENCHMARKS / script).read_text()
    assert "from machine import describe" in text
    assert "{describe()}" in text
    assert "platform.machine()" not in text


def test_the_module_runs_as_a_script(machine):
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "machine.py")], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == machine.describe()


def test_the_short_form_names_the_cpu_and_its_widest_vector_extension(machine, tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    assert machine.short(path) == "Intel(R) Xeon(R) Platinum 8480+, AVX-512"
    path.write_text("model name\t: AMD EPYC 7B13\nflags\t\t: fpu avx avx2 fma\n")
    assert machine.short(path) == "AMD EPYC 7B13, AVX2"
    path.write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    assert machine.short(path).endswith(", vector extensions unknown")
