"""Run notebooks (nbs/train_*.ipynb, nbs/sample_*.ipynb, nbs/encode_*.ipynb) are paired with py:percent scripts that reviewers read in
diffs; the two sides of every pair must say the same thing. `make prepare` re-syncs them (jupytext --sync)."""
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_NOTEBOOKS = sorted(p for pattern in ("train_*.ipynb", "sample_*.ipynb", "encode_*.ipynb", "exp_*.ipynb") for p in (ROOT / "nbs").glob(pattern))


def pair_problem(nb_path: Path) -> str | None:
    "Why `nb_path` and its paired script disagree, or None when they are in sync."
    script = nb_path.with_suffix(".py")
    if not script.exists(): return f"{script.name} is missing (pair it with: jupytext --set-formats ipynb,py:percent)"
    nb = jupytext.read(nb_path)
    if "ipynb,py:percent" not in nb.metadata.get("jupytext", {}).get("formats", ""):
        return f"{nb_path.name} is not paired with py:percent in its metadata"
    strip = lambda cells: [(c.cell_type, c.source.strip()) for c in cells]
    if strip(nb.cells) != strip(jupytext.read(script).cells):
        return f"{nb_path.name} and {script.name} differ: run 'make prepare'"
    return None


@pytest.mark.parametrize("nb", RUN_NOTEBOOKS, ids=lambda p: p.name)
def test_run_notebook_pairs_are_in_sync(nb):
    assert pair_problem(nb) is None, pair_problem(nb)


def test_the_pair_check_can_fail(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("steps = 100", metadata={"tags": ["parameters"]})])
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    path = tmp_path / "train_demo.ipynb"
    jupytext.write(nb, path)
    assert "missing" in pair_problem(path)
    jupytext.write(nb, path.with_suffix(".py"), fmt="py:percent")
    assert pair_problem(path) is None
    path.with_suffix(".py").write_text(path.with_suffix(".py").read_text().replace("steps = 100", "steps = 200"))
    assert "differ" in pair_problem(path)
