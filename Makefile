# The two commands a fresh clone needs: `make demo` and `make test`. Each installs what it needs into .venv
# from the pinned constraints in requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= groupfx-demo

.PHONY: install demo example test test-fast lint format bench lock clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/groupfx demo --out $(OUT)

# The real-data example at full draws (a few minutes): union membership and log wages on marriage.
example: $(STAMP)
	GROUPFX=$(BIN)/groupfx bash examples/wage_panel.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

test: lint
	$(BIN)/python -m pytest --durations=15

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" --durations=15

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/study_bench.py
	$(BIN)/python benchmarks/kernel_bench.py
	$(BIN)/python benchmarks/scale_bench.py
	$(BIN)/python benchmarks/levers_bench.py
	$(BIN)/python benchmarks/loo_bench.py
	$(BIN)/python benchmarks/peers_bench.py
	$(BIN)/python benchmarks/collect.py

# Re-pin every dependency after changing pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^groupfx' > requirements.lock

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache .ruff_cache
