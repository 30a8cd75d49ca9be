# fireorder: `make run` opens the app on the simulator; `make test` sets up and runs all tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test bench lint setup sysdeps screenshot clean demo

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev,bench]'
	touch $@

$(VENV)/.installed-bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,dev,bench]'
	touch $@

setup: sysdeps $(STAMP)

sysdeps:
	@bash scripts/sysdeps.sh

run: setup
	$(BIN)/fireorder

test: setup
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: sysdeps $(VENV)/.installed-bench
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m mypy app dsp devices bench
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

screenshot: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python scripts/screenshot.py --seconds 14 --out docs/screenshot.png --athlete docs/athlete.png
	xvfb-run -a -s "-screen 0 1366x768x24" $(BIN)/python scripts/screenshot.py --size 1366x740 --replay recordings/demo_lumbar_first.bdf --seconds 16 --select-rep 1 --out docs/review-1366.png
	xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python scripts/review_screenshots.py

demo: setup
	$(BIN)/fireorder record --source simulator --fast --duration 60 --seed 11 --glute-first 0.9 --lumbar-first 0.05 --athlete demo --session mostly-glute-first --out recordings/demo_glute_first.bdf --overwrite
	$(BIN)/fireorder record --source simulator --fast --duration 60 --seed 12 --glute-first 0.15 --lumbar-first 0.7 --athlete demo --session mostly-lumbar-first --out recordings/demo_lumbar_first.bdf --overwrite
