# minsnr: `make test` (set up, run every check) and `make book` (set up, run the main job, build the book).
# Both start from a fresh clone with nothing installed but Python 3.10+ and make.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_NOTEBOOKS := $(wildcard nbs/train_*.ipynb nbs/sample_*.ipynb nbs/encode_*.ipynb nbs/exp_*.ipynb)

.PHONY: test book install prepare check-clean nbtest pytest docs clean

# (pytest also checks that the run notebooks and their py:percent pairs agree: tests/test_pairs.py)
test: install check-clean nbtest docs pytest
	@echo "make test: every check passed"

# The main job; later issues add the experiments it runs before the build.
book: install docs
	@echo "book: $(CURDIR)/_build/html/index.html"

install: $(STAMP)

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# the kernel that nbdev_test, papermill and jupyter-book start is this environment's python
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (minsnr)"
	touch $@

# What a developer runs after editing notebooks: export the package, strip notebooks, regenerate
# README.md and the jupytext pairs of the run notebooks.
prepare: install
	# nbs/.gitattributes names the nbdev merge driver; this registers it with git (once per clone)
	$(BIN)/nbdev_install_hooks >/dev/null
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/jupytext --to md --opt notebook_metadata_filter=-all --opt cell_metadata_filter=-all \
		--output README.md nbs/index.ipynb
	$(if $(RUN_NOTEBOOKS),$(BIN)/jupytext --sync $(RUN_NOTEBOOKS))

# nbs/ is the source: exporting and cleaning must not change anything that is committed.
check-clean: install
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/jupytext --to md --opt notebook_metadata_filter=-all --opt cell_metadata_filter=-all \
		--output README.md nbs/index.ipynb
	@if [ -n "$$(git status --porcelain -- minsnr nbs README.md pyproject.toml)" ]; then \
		git status --porcelain -- minsnr nbs README.md pyproject.toml; git --no-pager diff --stat; \
		echo "nbdev_export / nbdev_clean / README generation changed the files above: run 'make prepare' and commit"; \
		exit 1; fi

# run notebooks (train_*, sample_*, encode_*) are long jobs: pytest runs them with tiny parameters through papermill
nbtest: install
	$(BIN)/nbdev_test --do_print --skip_file_re '^(_|\.|train_|sample_|encode_|exp_)'

docs: install
	$(BIN)/jupyter-book build . -W --keep-going

pytest: install
	$(BIN)/python -m pytest tests -q

clean:
	rm -rf _build _proc _docs .pytest_cache
