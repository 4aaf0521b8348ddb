# minsnr: `make test` (set up, run every check), `make check` (the fast inner loop) and `make book` (set up, re-run the
# experiments quickly, build the book). All start from a fresh clone with nothing installed but Python 3.10+ and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_NOTEBOOKS := $(wildcard nbs/train_*.ipynb nbs/sample_*.ipynb nbs/encode_*.ipynb nbs/exp_*.ipynb)

.PHONY: test check book experiments install lock install-browser prepare check-sync nbtest pytest pytest-fast docs wheel clean \
	bench-smoke bench-gpu

# The full suite, as CI runs it. The module and book notebooks execute once, in the book build (every cell, `#| slow`
# ones included; an execution error fails it); `make check` runs them through nbdev_test instead.
test: install install-browser check-sync docs pytest bench-smoke
	@echo "make test: every check passed"

# The inner loop (under a minute on 2 cores once installed): sync check, notebook tests, fast pytest. No book, no browser.
check: install check-sync nbtest pytest-fast
	@echo "make check: the fast checks passed (make test runs everything)"

# The main job: re-run the experiment notebooks in their quick mode (they read the stored result files in book/results
# and train at most one or two missing runs each, so this stays under 20 minutes on 2 CPU cores), then build the book.
# `make experiments QUICK=0` trains every missing run instead (see each notebook for its size).
EXPERIMENTS := nbs/exp_conflict.ipynb nbs/exp_pareto.ipynb nbs/exp_convergence.ipynb nbs/exp_ablations.ipynb nbs/exp_beyond.ipynb
QUICK ?= 1
book: install experiments docs
	@echo "book: $(CURDIR)/_build/html/index.html"

experiments: install
	set -e; for nb in $(EXPERIMENTS); do \
		$(BIN)/papermill $$nb $$nb --cwd . --log-level WARNING $(if $(filter 1,$(QUICK)),-p quick True); \
		$(BIN)/python tools/strip_injected.py $$nb; $(BIN)/nbdev_clean --fname $$nb; done

# The lock (requirements/lock.txt) holds the exact version of every package the whole suite was green with, on the
# platform named in its first line. LOCK=1 (the default) installs exactly those; LOCK=0 installs the newest releases
# that the ranges in settings.ini allow (to find drift on purpose) and lists what differs from the lock.
# `make lock` re-resolves the lock (pip-compile) under the caps in requirements/caps.txt, keeping the pins that still
# fit (so adding a requirement moves nothing else); `make lock UPGRADE=1` takes the newest releases of everything.
LOCK ?= 1
LOCKFILE := requirements/lock.txt
CAPS := requirements/caps.txt
PIP_TOOLS := pip-tools==7.6.2
PLATFORM = $(shell $(PYTHON) -c 'import platform, sys; print(f"{platform.system()}-{platform.machine()}-cp{sys.version_info[0]}{sys.version_info[1]}")')
LOCK_PLATFORM = $(shell sed -n '1s/^# platform: //p' $(LOCKFILE))
ifeq ($(LOCK),0)
STAMP := $(VENV)/.installed-latest
.PHONY: $(STAMP)
else ifeq ($(LOCK),1)
STAMP := $(VENV)/.installed-lock
else
$(error LOCK=$(LOCK): valid choices are LOCK=1 (the locked versions, the default) and LOCK=0 (the newest releases))
endif

install: $(STAMP)

$(VENV)/.installed-lock: settings.ini setup.py $(LOCKFILE)
	@[ "$(PLATFORM)" = "$(LOCK_PLATFORM)" ] || { echo "$(LOCKFILE) is for $(LOCK_PLATFORM), this is $(PLATFORM):" \
		"run 'make lock' to lock this platform, or 'make test LOCK=0' for the newest releases"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet -c $(LOCKFILE) -e ".[dev]"
	$(MAKE) --no-print-directory kernel
	touch $@

$(VENV)/.installed-latest:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]"
	$(MAKE) --no-print-directory kernel
	$(BIN)/python tools/lock_drift.py $(LOCKFILE)
	touch $@

# the kernel that nbdev_test, papermill and jupyter-book start is this environment's python
.PHONY: kernel
kernel:
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (minsnr)" >/dev/null

lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(PIP_TOOLS)"
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet $(if $(filter 1,$(UPGRADE)),--upgrade) --extra dev --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links --constraint $(CAPS) --output-file $(LOCKFILE) setup.py
	sed -i '1i # platform: $(PLATFORM)' $(LOCKFILE)
	@echo "$(LOCKFILE) re-resolved: run 'make test' and commit it when green"

# tests/test_browser.py opens every page of the built book in headless Chromium: math must be typeset by the local
# MathJax (no raw $$ or \( left), every image must load, and a screenshot of each page goes to _build/screenshots.
# Debian's chromium package (apt, as root or through sudo); nothing to do when a Chromium is already there.
BROWSER_HINT := the browser test needs Chromium: install it (Debian/Ubuntu: apt-get install chromium fonts-dejavu-core;\
 elsewhere any Chromium or Chrome) and re-run, or name its binary with CHROMIUM=/path/to/chromium. 'make check' needs no browser
install-browser:
	@[ -n "$$CHROMIUM" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
		else echo "not root and no sudo: $(BROWSER_HINT)"; exit 1; fi; \
		command -v apt-get >/dev/null || { echo "no apt-get here: $(BROWSER_HINT)"; exit 1; }; \
		{ $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends chromium fonts-dejavu-core; } \
		|| { echo "apt-get could not install chromium: $(BROWSER_HINT)"; exit 1; }; }

# What a developer runs after editing notebooks: export the package, strip notebooks, regenerate
# README.md and the jupytext pairs of the run notebooks.
prepare: install
	# nbs/.gitattributes names the nbdev merge driver; this registers it with git (once per clone)
	$(BIN)/nbdev_install_hooks >/dev/null
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/python tools/make_readme.py README.md
	$(if $(RUN_NOTEBOOKS),$(BIN)/jupytext --sync $(RUN_NOTEBOOKS))

# nbs/ is the source: what nbdev_export, nbdev_clean and the README generation would write must be what the working
# tree holds (judged on a scratch copy, so uncommitted edits count and nothing of yours is rewritten).
check-sync: install
	$(BIN)/python tools/check_sync.py

# run notebooks (train_*, sample_*, encode_*) are long jobs: pytest runs them with tiny parameters through papermill
# nbdev_test runs one notebook per core: one thread each (torch's default of every core in every process oversubscribes
# the machine, which made this step 6× slower on 2 cores)
nbtest: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/nbdev_test --do_print --skip_file_re '^(_|\.|train_|sample_|encode_|exp_)'

# the notebooks run in parallel into the execution cache first (Jupyter Book runs them one at a time); a cell that
# raises fails either step, so no page is ever built with a traceback. Every page is read and written afresh (--all;
# the execution cache in _build/.jupyter_cache is kept), so a page renamed or dropped from _toc.yml leaves no stale
# copy behind and a re-executed notebook is never shown from an older reading.
docs: install
	$(BIN)/python tools/execute_book.py
	rm -rf _build/html
	$(BIN)/jupyter-book build . --all -W --keep-going

# The GPU benchmark suite (minsnr.cli.bench_suite): training img/s and MFU of ViT-B/2 and the UNet against the official
# recipe's configuration, a training and resume smoke, Heun sampling with guidance, Inception features, peak memory.
# `make bench-gpu` measures on a GPU; `make bench-smoke` runs the same code at tiny sizes on a CPU (part of `make test`).
# Both write bench.json and bench.md to $(BENCH_OUT).
BENCH_OUT ?= _build/bench
bench-smoke: install
	OMP_NUM_THREADS=1 $(BIN)/python -m minsnr.cli bench-suite scale=smoke out_dir=$(BENCH_OUT) device=cpu

bench-gpu: install
	$(BIN)/python -m minsnr.cli bench-suite scale=gpu out_dir=$(BENCH_OUT)

# markers (pyproject.toml): slow (papermill runs, training), book (needs the built book), browser (needs Chromium)
# one worker per core (pytest-xdist), one thread each: torch's default of every core in every process oversubscribes;
# the browser tests share one Chromium and one screenshot folder, so they run after the others, in one process
PYTEST := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest tests -q
pytest: install install-browser
	$(PYTEST) -n auto -m "not browser" --durations=10
	$(PYTEST) -m browser

pytest-fast: install
	$(PYTEST) -n auto -m "not slow and not book and not browser"

# The package as others install it: an sdist and, built from it, a wheel (minsnr/*.py and the shipped weights in
# minsnr/assets) in dist/, with the locked setuptools of .venv (no download); `pip install dist/minsnr-*.whl`.
# tests/test_wheel.py installs such a wheel into a clean venv and runs it without the notebooks' tools.
wheel: install
	rm -f dist/$(shell sed -n 's/^lib_name = //p' settings.ini)-*
	$(BIN)/python -m build --no-isolation --outdir dist .
	@ls -l dist

clean:
	rm -rf _build _proc _docs .pytest_cache
