#!/usr/bin/env bash
# Fill .whl/ (ignored by git) with the wheels the GPU machine lacks, for CPython 3.12 on manylinux x86_64:
# groupfx's own wheel, built from this working tree, and what fitting needs beyond the machine's own
# packages (numpy, scipy, pandas, xarray, matplotlib, numba, llvmlite, jax, numpyro, pyarrow, formulaic,
# statsmodels, jinja2, rich and their dependencies). Versions come from requirements.lock, so the GPU
# run uses the pins the test suite holds. Run here, where the package registry is reachable; the GPU
# machine has no network and installs these with benchmarks/gpu_check.sh.
#
# Left out on purpose: dask, distributed and linearmodels (and what only they need). groupfx imports them
# only for a distributed study and the Gaussian cross-check, neither of which a fit on the GPU runs.
#
# Usage: bash benchmarks/gpu_wheels.sh    (prints each wheel, the total, and the tree + .whl total)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LIMIT_MIB=64

# The dependency closure of pymc, pytensor, nutpie and arviz that the machine above does not have.
CARRY=(
  pymc pytensor nutpie arviz
  cachetools cloudpickle threadpoolctl filelock setuptools
  cons etuples logical-unification miniKanren toolz
  zarr numcodecs donfig PyYAML google-crc32c obstore arro3-core
  h5netcdf h5py xarray-einstats platformdirs graphviz
)
# Not in requirements.lock (pip freeze leaves it out); pytensor imports it.
EXTRA_PINS=(setuptools==80.9.0)

pin() {  # NAME -> NAME==VERSION from requirements.lock (names compared as pip does: case, - _ .)
  local name=$1 key line
  for line in "${EXTRA_PINS[@]}"; do
    [[ ${line%%==*} == "$name" ]] && { echo "$line"; return; }
  done
  key=$(echo "$name" | tr 'A-Z_.' 'a-z--')
  while IFS= read -r line; do
    [[ -z $line || $line == \#* ]] && continue
    if [[ $(echo "${line%%==*}" | tr 'A-Z_.' 'a-z--') == "$key" ]]; then echo "$line"; return; fi
  done < requirements.lock
  echo "gpu_wheels.sh: $name is not pinned in requirements.lock" >&2
  return 1
}

rm -rf .whl
mkdir -p .whl
pins=()
for name in "${CARRY[@]}"; do pins+=("$(pin "$name")"); done
echo "Downloading ${#pins[@]} wheels (cp312, manylinux x86_64): ${pins[*]}"
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl "${pins[@]}"

echo "Building groupfx's wheel from the working tree"
build=$(mktemp -d)
leftovers=()  # what the build writes into the tree, removed unless it was there before
for path in build src/groupfx.egg-info; do [[ -e $path ]] || leftovers+=("$path"); done
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$build" . >/dev/null
cp "$build"/groupfx-*.whl .whl/
rm -rf "$build" "${leftovers[@]}"

count=$(find .whl -type f -name '*.whl' | wc -l)
if [[ $count -ne $((${#CARRY[@]} + 1)) ]]; then
  echo "gpu_wheels.sh: expected $((${#CARRY[@]} + 1)) wheels, found $count" >&2
  exit 1
fi
(cd .whl && ls -1s --block-size=K ./*.whl | sed 's#\./##')
whl=$(du -sb .whl | cut -f1)
tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((whl + tree))
mib() { "$PYTHON" -c "print(f'{$1 / 2**20:.1f}')"; }
echo -n ".whl: $count wheels, $(mib "$whl") MiB; working tree (tracked and unignored files): $(mib "$tree") MiB;"
echo -n " together $(mib "$total") MiB"
if ((total >= LIMIT_MIB * 1048576)); then
  echo " -- over the ${LIMIT_MIB} MiB limit" >&2
  exit 1
fi
echo " (limit ${LIMIT_MIB} MiB)"
