"""Design measurement: the fused kernel compiled for the host CPU against the same code compiled for AVX2.

numba compiles for the host CPU unless ``NUMBA_CPU_NAME`` names another. On a CPU with AVX-512 this runs
the Mundlak model's log-density + gradient (``FusedModel.logp_grad``, Bernoulli, groups of 100 units) in
child processes, alternating the host build and an AVX2 build (``NUMBA_CPU_NAME=haswell``, its own numba
cache folder), and prints nanoseconds per row (the median of 60 calls after a warm-up call) for each size
and precision, then the median ratio over the pairs.

Usage: ``python benchmarks/vector_width_bench.py [--pairs 2]``. Not part of ``make bench``; the result is
in ``design_results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = ((100_000, 1_000), (1_000_000, 10_000))
PRECISIONS = ("float64", "float32")


def child() -> dict:
    """ns per row of one logp + gradient for each size and precision, in this process's build."""
    import warnings

    import numpy as np

    import groupfx
    from groupfx.engines.kernels import FusedModel

    warnings.filterwarnings("ignore")
    out = {}
    for units, groups in SIZES:
        data = groupfx.simulate(n_groups=groups, n_units=units, seed=42).data
        for precision in PRECISIONS:
            fused = FusedModel("mundlak", data, precision=precision)
            theta = fused.initial_point(1)
            fused.logp_grad(theta)
            times = []
            for _ in range(60):
                start = time.perf_counter()
                fused.logp_grad(theta)
                times.append(time.perf_counter() - start)
            out[f"{units}:{precision}"] = float(np.median(times)) * 1e9 / units
    return out


def run(env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child"], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child()))
        return
    host_env = {k: v for k, v in os.environ.items() if k != "NUMBA_CPU_NAME"}
    with tempfile.TemporaryDirectory(prefix="groupfx-avx2-cache-") as cache:
        avx2_env = host_env | {"NUMBA_CPU_NAME": "haswell", "NUMBA_CACHE_DIR": str(Path(cache))}
        pairs = [(run(avx2_env), run(host_env)) for _ in range(args.pairs)]
    print("| N | precision | host build (ns/row) | AVX2 build (ns/row) | AVX2 / host |")
    print("|---:|---|---:|---:|---:|")
    for key in pairs[0][0]:
        units, precision = key.split(":")
        host = statistics.median(h[key] for _, h in pairs)
        avx2 = statistics.median(a[key] for a, _ in pairs)
        ratio = statistics.median(a[key] / h[key] for a, h in pairs)
        print(f"| {int(units):,} | {precision} | {host:.2f} | {avx2:.2f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
