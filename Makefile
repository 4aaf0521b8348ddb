# minsnr: `make test` (set up, run every check) and `make book` (set up, re-run the experiments quickly, build the book).
# Both start from a fresh clone with nothing installed but Python 3.10+ and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_NOTEBOOKS := $(wildcard nbs/train_*.ipynb nbs/sample_*.ipynb nbs/encode_*.ipynb nbs/exp_*.ipynb)

.PHONY: test book experiments install install-browser prepare check-clean nbtest pytest docs clean

# (pytest also checks that the run notebooks and their py:percent pairs agree: tests/test_pairs.py)
test: install install-browser check-clean nbtest docs pytest
	@echo "make test: every check passed"

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

install: $(STAMP)

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# the kernel that nbdev_test, papermill and jupyter-book start is this environment's python
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (minsnr)"
	touch $@

# tests/test_browser.py opens every page of the built book in headless Chromium: math must be typeset by the local
# MathJax (no raw $$ or \( left), every image must load, and a screenshot of each page goes to _build/screenshots.
# Debian's chromium package (apt, so root: sudo when we are not root); skipped when a Chromium is already there.
SUDO := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo))
install-browser:
	@[ -n "$$CHROMIUM" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		$(SUDO) apt-get update && \
		$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core; }

# What a developer runs after editing notebooks: export the package, strip notebooks, regenerate
# README.md and the jupytext pairs of the run notebooks.
prepare: install
	# nbs/.gitattributes names the nbdev merge driver; this registers it with git (once per clone)
	$(BIN)/nbdev_install_hooks >/dev/null
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/python tools/make_readme.py README.md
	$(if $(RUN_NOTEBOOKS),$(BIN)/jupytext --sync $(RUN_NOTEBOOKS))

# nbs/ is the source: exporting and cleaning must not change anything that is committed.
check-clean: install
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/python tools/make_readme.py README.md
	@if [ -n "$$(git status --porcelain -- minsnr nbs README.md pyproject.toml)" ]; then \
		git status --porcelain -- minsnr nbs README.md pyproject.toml; git --no-pager diff --stat; \
		echo "nbdev_export / nbdev_clean / README generation changed the files above: run 'make prepare' and commit"; \
		exit 1; fi

# run notebooks (train_*, sample_*, encode_*) are long jobs: pytest runs them with tiny parameters through papermill
nbtest: install
	$(BIN)/nbdev_test --do_print --skip_file_re '^(_|\.|train_|sample_|encode_|exp_)'

docs: install
	$(BIN)/jupyter-book build . -W --keep-going

pytest: install install-browser
	$(BIN)/python -m pytest tests -q

clean:
	rm -rf _build _proc _docs .pytest_cache
