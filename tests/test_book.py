"""The built book: every page of the table of contents is there, math is typeset by a local MathJax, the module
notebooks were executed with their results shown, and nothing failed."""
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import toc_files

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book


class TextAndRefs(HTMLParser):
    "Visible text of a page (scripts and styles left out) and the files it refers to."
    def __init__(self):
        super().__init__()
        self.text, self.refs, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"): self._skip += 1
        if tag == "img": self.refs.append(attrs.get("src"))
        if tag == "script" and attrs.get("src"): self.refs.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("script", "style"): self._skip -= 1

    def handle_data(self, data):
        if not self._skip: self.text.append(data)


def parse(page: Path) -> TextAndRefs:
    parser = TextAndRefs()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize("doc", toc_files())
def test_page_exists_and_its_files_load(built_book, doc):
    page = built_book / f"{doc}.html"
    assert page.exists(), f"{doc} is in _toc.yml but {page} was not built"
    for ref in parse(page).refs:
        if ref and not re.match(r"^(https?:)?//", ref):
            assert (page.parent / ref.split("?")[0]).resolve().exists(), f"{page.name} refers to missing {ref}"


@pytest.mark.parametrize("doc", toc_files())
def test_math_is_for_mathjax_and_served_locally(built_book, doc):
    html = (built_book / f"{doc}.html").read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net" not in html and "mathjax@3" not in html, "MathJax must not come from a CDN (offline)"
    if 'class="math' in html:  # Sphinx loads MathJax only on pages with math
        assert re.search(r'<script[^>]+src="[./]*_static/mathjax/tex-chtml\.js(\?[^"]*)?"', html), "local MathJax script missing"
    text = "".join(parse(built_book / f"{doc}.html").text)
    assert "$$" not in text, "raw $$ left in the text: a display equation was not parsed"


def test_math_heavy_pages_have_numbered_equations(built_book):
    for doc in ("book/appendix_b", "nbs/01_schedule", "nbs/02_weighting"):
        html = (built_book / f"{doc}.html").read_text(encoding="utf-8")
        assert html.count('class="math notranslate nohighlight"') >= 2, doc
        assert re.search(r'<span class="eqno">\(\d+\)', html), f"{doc}: no numbered equation"
        assert "Unknown target name" not in html and "undefined label" not in html


def test_module_notebooks_were_executed_with_results(built_book):
    schedule = "".join(parse(built_book / "nbs/01_schedule.html").text)
    assert "SNR < 5 from t = 261" in schedule and "SNR < 1 from t = 496" in schedule
    weighting = built_book / "nbs/02_weighting.html"
    assert len([r for r in parse(weighting).refs if r and r.endswith(".png")]) >= 1, "the weighting figure is missing"
    appendix = "".join(parse(built_book / "book/appendix_b.html").text)
    assert "ε: 0   v: 0" in appendix
    reports = built_book / "reports"  # where jupyter-book logs notebook execution errors
    assert not reports.exists() or not any(reports.iterdir()), f"execution errors: {list(reports.iterdir())}"


def one_page_book(folder: Path, code: str) -> Path:
    "A book of one notebook page running `code`, with the project's execution settings."
    import nbformat
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "_config.yml", folder / "_config.yml")
    (folder / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A page"), nbformat.v4.new_code_cell(code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / "page.ipynb")
    return folder


@pytest.mark.slow
def test_an_execution_error_fails_the_build(tmp_path):
    "The project's execution settings turn a raising cell into a failed build, even without -W, not a page with a traceback."
    one_page_book(tmp_path, "raise RuntimeError('a cell that fails')")
    jb = Path(sys.executable).parent / "jupyter-book"
    build = subprocess.run([str(jb), "build", str(tmp_path)], capture_output=True, text=True)
    assert build.returncode != 0, "a notebook that raises was published"
    assert "a cell that fails" in build.stdout + build.stderr


@pytest.mark.slow
def test_parallel_pre_execution_fails_on_an_error_and_caches_what_ran(tmp_path):
    execute = [sys.executable, str(ROOT / "tools" / "execute_book.py"), "--root"]
    broken = one_page_book(tmp_path / "broken", "1 / 0")
    run = subprocess.run(execute + [str(broken)], capture_output=True, text=True)
    assert run.returncode == 1 and "page.ipynb: a cell raised" in run.stderr and "ZeroDivisionError" in run.stderr
    good = one_page_book(tmp_path / "good", "print(6 * 7)")
    first = subprocess.run(execute + [str(good)], capture_output=True, text=True, check=True)
    assert "executing 1 notebooks" in first.stdout and (good / "_build" / ".jupyter_cache").is_dir()
    again = subprocess.run(execute + [str(good)], capture_output=True, text=True, check=True)
    assert "every book notebook is in the execution cache" in again.stdout
