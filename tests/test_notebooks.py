"""House rules for the notebooks: module notebooks are nbdev sources without outputs; the book-only notebooks run."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE_NBS = sorted((ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"))


def cells(nb_path: Path) -> list[dict]:
    return json.loads(nb_path.read_text(encoding="utf-8"))["cells"]


def test_there_are_module_notebooks():
    assert [p.name for p in MODULE_NBS][:3] == ["00_core.ipynb", "01_schedule.ipynb", "02_weighting.ipynb"]


@pytest.mark.parametrize("nb", MODULE_NBS, ids=lambda p: p.name)
def test_module_notebook_shape(nb):
    cs = cells(nb)
    first = "".join(cs[0]["source"])
    assert cs[0]["cell_type"] == "markdown" and re.match(r"# \S.*\n\n> \S", first), "title + one-line summary first"
    assert any("".join(c["source"]).startswith("#| default_exp ") for c in cs if c["cell_type"] == "code")
    assert all(not c.get("outputs") for c in cs if c["cell_type"] == "code"), "module notebooks are stored without outputs"
    kernel = json.loads(nb.read_text())["metadata"]["kernelspec"]["name"]
    assert kernel == "python3"


@pytest.mark.parametrize("nb", MODULE_NBS, ids=lambda p: p.name)
def test_exported_module_is_up_to_date(nb):
    "Every exported cell appears verbatim in the module that nbdev_export wrote."
    target = next("".join(c["source"]).split()[2] for c in cells(nb) if "".join(c["source"]).startswith("#| default_exp "))
    module = ROOT / "minsnr" / f"{target}.py"
    # nbdev makes the package's own top-level imports relative: undo that before comparing
    code = re.sub(r"^from \.(\w)", r"from minsnr.\1", module.read_text(encoding="utf-8"), flags=re.M)
    code = re.sub(r"^from \. import", "from minsnr import", code, flags=re.M)
    for c in cells(nb):
        src = "".join(c["source"])
        if c["cell_type"] == "code" and src.startswith("#| export"):
            body = src.split("\n", 1)[1].strip()
            assert body in code, f"{module.name} is stale: run nbdev_export"


@pytest.mark.nbrun
@pytest.mark.parametrize("nb", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.name)
def test_book_notebook_runs(nb):
    "Book-only notebooks are not run by nbdev_test: run them here (their asserts are checks); `make test` lets the book build run them."
    from execnb.nbio import read_nb
    from execnb.shell import CaptureShell
    shell = CaptureShell(path=nb.parent)
    shell.run_all(read_nb(nb), exc_stop=True)


@pytest.mark.parametrize("nb", MODULE_NBS, ids=lambda p: p.name)
def test_hidden_cells_are_removed_from_the_book(nb):
    "nbdev's `#| hide` cells (test imports, scaffolding) carry Jupyter Book's remove-cell tag, so no page shows them."
    shown = [i for i, c in enumerate(cells(nb)) if c["cell_type"] == "code" and "".join(c["source"]).startswith("#| hide")
             and "remove-cell" not in c.get("metadata", {}).get("tags", [])]
    assert not shown, f"cells {shown} start with '#| hide' but have no 'remove-cell' tag"


PROCESS_WORDS = re.compile(r"\b(issues?|sessions?)\b|this (2-core )?machine|\d-core machine", re.I)


@pytest.mark.parametrize("nb", sorted([*(ROOT / "nbs").glob("*.ipynb"), *(ROOT / "book").glob("*.ipynb")]), ids=lambda p: p.name)
def test_pages_do_not_speak_of_how_the_work_was_organised(nb):
    "A reader of the book never meets the project's own process (issues, sessions, the machine it was built on)."
    found = [m.group(0) for c in cells(nb) for m in PROCESS_WORDS.finditer("".join(c["source"]))]
    assert not found, f"{nb.name}: {found}"
