#!/usr/bin/env bash
# The GPU check, on the GPU machine, from the repository root, without the network:
#
#   bash benchmarks/gpu_check.sh OUTDIR [--small] [more gpu_bench.py options]
#
# 1. installs the wheels that benchmarks/gpu_wheels.sh put in .whl/ into $GPU_SITE (default /tmp/site),
#    except those whose distribution the machine already has (groupfx, pymc, pytensor, nutpie and arviz
#    are always ours), and says which requirements the result leaves unmet;
# 2. prints the device (nvidia-smi, jax.devices());
# 3. runs benchmarks/gpu_bench.py --out OUTDIR within what is left of $GPU_CHECK_SECONDS (default 480),
#    which writes OUTDIR/gpu_results.md and .json as each row ends.
# Everything printed is also in OUTDIR/gpu_check.log.
set -uo pipefail
if [[ $# -lt 1 || $1 == -* ]]; then
  echo "usage: bash benchmarks/gpu_check.sh OUTDIR [--small] [gpu_bench.py options]" >&2
  exit 2
fi
mkdir -p "$1" || exit 1
OUT=$(cd "$1" && pwd) # absolute: the script moves to the repository root
shift
cd "$(dirname "$0")/.."
exec > >(tee "$OUT/gpu_check.log") 2>&1
PYTHON=${PYTHON:-python3}
SITE=${GPU_SITE:-/tmp/site}
LIMIT=${GPU_CHECK_SECONDS:-480}
RESERVE=10 # seconds kept back for the end
SECONDS=0
step() { echo; echo "== [${SECONDS} s] $*"; }

step "installing .whl/ into $SITE with $($PYTHON -c 'import sys; print(sys.executable, sys.version.split()[0])')"
shopt -s nullglob
wheels=(.whl/*.whl)
if [[ ${#wheels[@]} -eq 0 ]]; then
  echo "gpu_check.sh: .whl/ holds no wheels: run 'bash benchmarks/gpu_wheels.sh' where the network is, and carry .whl" >&2
  exit 1
fi
unset PYTHONPATH
# Which wheels to install: those whose distribution this Python lacks, and always the five below.
mapfile -t install < <("$PYTHON" - "${wheels[@]}" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version

OURS = {"groupfx", "pymc", "pytensor", "nutpie", "arviz"}
for path in sys.argv[1:]:
    name = path.rsplit("/", 1)[-1].split("-")[0].lower().replace("_", "-")
    carried = path.rsplit("/", 1)[-1].split("-")[1]
    try:
        have = version(name)
    except PackageNotFoundError:
        have = None
    if have is None or name in OURS:
        print(path)
    else:
        print(f"  using the machine's {name} {have} (carried {carried})", file=sys.stderr)
EOF
)
rm -rf "$SITE"
if ! "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "${install[@]}"; then
  echo "gpu_check.sh: installing the wheels failed" >&2
  exit 1
fi
echo "installed ${#install[@]} of ${#wheels[@]} wheels in ${SECONDS} s"
# groupfx stamps its numba caches only in __pycache__ folders that exist when it is imported; loo/'s does
# not yet on a fresh install, so the second import would throw away and recompile loo's caches. Made now,
# the warm-up's compiles are kept.
find "$SITE/groupfx" -type d -not -name __pycache__ -exec mkdir -p {}/__pycache__ \;
export PYTHONPATH=$SITE
"$PYTHON" - <<'EOF'
# Requirements of what was installed that this environment does not meet (a note, not a stop).
from importlib.metadata import PackageNotFoundError, distribution, version

from packaging.requirements import Requirement

LAZY = {"distributed", "linearmodels", "dask"}  # groupfx imports them for studies and the Gaussian cross-check
unmet = []
for name in ("groupfx", "pymc", "pytensor", "nutpie", "arviz", "zarr", "xarray-einstats", "h5netcdf"):
    for text in distribution(name).requires or []:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if requirement.name.lower() in LAZY:
            continue
        try:
            have = version(requirement.name)
        except PackageNotFoundError:
            unmet.append(f"{name} needs {requirement}: missing")
            continue
        if not requirement.specifier.contains(have, prereleases=True):
            unmet.append(f"{name} needs {requirement}: have {have}")
print("requirements: all met" if not unmet else "requirements not met (the run goes on):\n  " + "\n  ".join(unmet))
EOF

step "device"
if command -v nvidia-smi >/dev/null; then
  timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv || true
  timeout 30 nvidia-smi | head -20 || true
else
  echo "nvidia-smi: not on this machine"
fi
timeout 120 "$PYTHON" -c "import jax; print('jax', jax.__version__, jax.devices())" || echo "asking JAX for its devices failed"
# The first import writes the bytecode (installed with --no-compile) and numba's caches of groupfx's
# callbacks into $SITE: paid here once, not by the first row. A failure is shown and the rows still run
# (each says where it stopped).
if ! timeout 180 "$PYTHON" benchmarks/gpu_bench.py --warm-up; then
  echo "gpu_check.sh: importing what the rows need failed (above); the rows go on and each logs its error"
fi

budget=$((LIMIT - SECONDS - RESERVE))
step "benchmark: $budget s left of $LIMIT"
"$PYTHON" benchmarks/gpu_bench.py --out "$OUT" --budget "$budget" "$@"
code=$?
step "done (exit $code); $OUT:"
ls -la "$OUT"
echo
cat "$OUT/gpu_results.md" 2>/dev/null
exit $code
