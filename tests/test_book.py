"""The built book: every page of the table of contents is there, math is typeset by a local MathJax, the module
notebooks were executed with their results shown, and nothing failed."""
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import toc_files

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.book
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import minsnr_book  # noqa: E402  the book's Sphinx extension


def toc_pages() -> list[str]:
    "Every page of _toc.yml, the sections of chapters (the API reference's modules) included."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    def walk(entries):
        for e in entries:
            yield e["file"]
            yield from walk(e.get("sections", []))
    return [toc["root"], *walk(ch for part in toc.get("parts", []) for ch in part["chapters"])]


def part_pages(*captions: str) -> list[str]:
    "The chapters of the toc's parts with these captions."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ch["file"] for part in toc["parts"] if part["caption"] in captions for ch in part["chapters"]]


class TextAndRefs(HTMLParser):
    "Visible text of a page (scripts and styles left out), the part of it that is not code, and the files it refers to."
    def __init__(self):
        super().__init__()
        self.text, self.prose, self.refs, self._skip, self._code = [], [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style"): self._skip += 1
        if tag in ("pre", "code"): self._code += 1
        if tag == "img": self.refs.append(attrs.get("src"))
        if tag == "script" and attrs.get("src"): self.refs.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("script", "style"): self._skip -= 1
        if tag in ("pre", "code"): self._code = max(0, self._code - 1)

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)
            if not self._code: self.prose.append(data)


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


def table_rows(html: str) -> list[list[str]]:
    "The cells' text of every table row of a page."
    strip = lambda cell: re.sub(r"<[^>]+>", "", cell).strip()
    return [[strip(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)]


def test_module_notebooks_were_executed_with_results(built_book):
    schedule = table_rows((built_book / "nbs/01_schedule.html").read_text(encoding="utf-8"))
    assert any(row[0] == "cosine" and "261" in row and "496" in row for row in schedule), \
        "the schedule page's table lacks the cosine schedule's SNR < 5 and SNR < 1 timesteps (261, 496)"
    weighting = built_book / "nbs/02_weighting.html"
    assert len([r for r in parse(weighting).refs if r and r.endswith((".png", ".svg"))]) >= 1, "the weighting figure is missing"
    numbers = lambda row: [float(c) for c in row[1:] if re.fullmatch(r"[-+]?\d[\d.]*(e[-+]?\d+)?", c)]
    appendix = [numbers(r) for r in table_rows((built_book / "book/appendix_b.html").read_text(encoding="utf-8"))]
    exact = [r for r in appendix if r and max(map(abs, r)) < 1e-6]
    assert len(exact) >= 5, f"Appendix B: the ε- and v-space losses should equal the x0-space loss for every strategy: {appendix}"
    reports = built_book / "reports"  # where jupyter-book logs notebook execution errors
    assert not reports.exists() or not any(reports.iterdir()), f"execution errors: {list(reports.iterdir())}"


def one_page_book(folder: Path, code: str, *more_cells) -> Path:
    "A book of one notebook page running `code` (and `more_cells`), with the project's settings and extension."
    import nbformat
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "_config.yml", folder / "_config.yml")
    shutil.copytree(ROOT / "book" / "_ext", folder / "book" / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "book" / "references.bib", folder / "book" / "references.bib")
    (folder / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A page"), nbformat.v4.new_code_cell(code),
                                         *more_cells])
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


# What must never reach a reader: progress-bar plumbing, paths of the machine that built the book, words of the
# project's own process, markdown tables left as text, nbdev's directive lines.
LEAKS = {
    "a tqdm warning": re.compile(r"TqdmWarning|IProgress"),
    "a local path": re.compile(r"/work/|/tmp/|/root/|/\.venv/"),  # (a relative `.venv/bin/python` in a command is fine)
    "a process word": re.compile(r"\b(issues?|sessions?)\b|this (2-core )?machine|\d-core machine", re.I),
    "an nbdev directive line": re.compile(r"^\s*#\|", re.M),
}
RAW_TABLE = re.compile(r"\|\s*:?-{3,}:?\s*\|")  # a markdown table's rule row left as text


def leaks(text: str, prose: str) -> list[str]:
    "What a page's visible text (and the prose part of it, code left out) shows that it must not."
    found = [f"{what}: {m.group(0)!r} in …{text[max(0, m.start() - 40):m.end() + 40]!r}…"
             for what, rx in LEAKS.items() if (m := rx.search(text))]
    if m := RAW_TABLE.search(prose):
        found.append(f"a markdown table left unrendered: …{prose[max(0, m.start() - 60):m.end() + 20]!r}…")
    return found


@pytest.mark.parametrize("doc", toc_pages())
def test_no_environment_leaks_on_the_page(built_book, doc):
    page = parse(built_book / f"{doc}.html")
    found = leaks("".join(page.text), "".join(page.prose))
    assert not found, f"{doc}: " + "; ".join(found)


@pytest.mark.parametrize("doc", toc_pages())
def test_no_rendering_errors_on_the_page(built_book, doc):
    "A reST or MyST error that Sphinx did not stop on (a docstring's stray `*`, an unknown role) shows as red text."
    html = (built_book / f"{doc}.html").read_text(encoding="utf-8")
    found = re.findall(r'class="(system-message|problematic)"', html)
    assert not found, f"{doc}: {len(found)} rendering error(s) on the page"


def test_the_leak_check_can_fail():
    table = "| a | b |\n| --- | ---: |\n| 1 | 2 |"
    assert leaks("ok", "ok") == []
    assert any("tqdm" in f for f in leaks("TqdmWarning: IProgress not found", ""))
    assert any("local path" in f for f in leaks("saved to /work/main/runs/x", ""))
    assert any("process word" in f for f in leaks("as the last session found", ""))
    assert any("nbdev directive" in f for f in leaks("x = 1\n#| export\ny = 2", ""))
    assert any("unrendered" in f for f in leaks(table, table))
    assert leaks(table, "prose without it") == []  # a table in a code listing is code, not a failed rendering


def test_tables_render_as_tables(built_book):
    "Markdown tables in markdown cells and in display(Markdown(...)) outputs are <table>s."
    assert "<table" in (built_book / "book/install.html").read_text(encoding="utf-8")  # a markdown page
    index = (built_book / "nbs/index.html").read_text(encoding="utf-8")  # a glued Markdown output
    assert "<table" in index and "over max-SNR-1" in index


def test_api_reference_documents_every_module(built_book):
    import importlib
    import inspect
    for module in ("core", "schedule", "weighting", "loss", "backbone", "vit", "unet", "data", "trainer", "sampler",
                   "fid", "pareto", "experiments", "plotting", "cli"):
        html = (built_book / f"book/api/{module}.html").read_text(encoding="utf-8")
        mod = importlib.import_module(f"minsnr.{module}")
        # every public function and class (constants have no docstring of their own: autodoc leaves them out)
        names = [n for n in mod.__all__ if inspect.isfunction(getattr(mod, n)) or inspect.isclass(getattr(mod, n))]
        missing = [n for n in names if f'id="minsnr.{module}.{n}"' not in html]
        assert not missing, f"minsnr.{module}: no entry for {missing}"
    loss = (built_book / "book/api/weighting.html").read_text(encoding="utf-8")
    assert re.search(r'<dt class="field-odd">Parameters', loss), "document()'s parameter list is not rendered as a field list"
    loss = (built_book / "book/api/loss.html").read_text(encoding="utf-8")
    assert re.search(r'href="[./]*nbs/03_loss.html#equation-diffusion-loss"', loss), "Eq. (diffusion-loss) is not a link"
    assert "Eq. (diffusion-loss)" not in "".join(parse(built_book / "book/api/loss.html").text)
    genindex = (built_book / "genindex.html").read_text(encoding="utf-8")
    assert "loss_weight()" in genindex and "cosine_schedule()" in genindex, "the general index is empty"


def test_front_page_cites_and_links(built_book):
    index = (built_book / "nbs/index.html").read_text(encoding="utf-8")
    for url in ("https://arxiv.org/abs/2303.09556", "https://github.com/TiankaiHang/Min-SNR-Diffusion-Training",
                "https://github.com/huggingface/diffusers", "https://github.com/crowsonkb/k-diffusion",
                "https://github.com/NVlabs/edm"):
        assert url in index, url
    assert "bibliography.html#id" in index, "no {cite} on the front page resolves to the bibliography"
    assert re.search(r'<figure[^>]*id="fig-index-speedup"', index) and "<figcaption" in index
    linked = set(re.findall(r'href="([^"#]+)\.html', index))
    pages = [d for d in toc_pages() if d != "nbs/index" and (not d.startswith("book/api/") or d == "book/api/index")]
    unlinked = [d for d in pages if (d[len("nbs/"):] if d.startswith("nbs/") else f"../{d}") not in linked]
    assert not unlinked, f"the front page does not link to {unlinked}"
    bib = (built_book / "book/bibliography.html").read_text(encoding="utf-8")
    assert bib.count('role="doc-biblioentry"') >= 15, "the bibliography does not list every reference"
    assert "Hang et al. 2023" in bib, "bibliography entries are not labelled author-year"


def test_readme_citations_match_the_bibliography():
    "tools/make_readme.py writes each citation from its own table: it must agree with book/references.bib."
    sys.path.insert(0, str(ROOT / "tools"))
    import make_readme
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    entries = dict(re.findall(r"@\w+\{(\w+),(.*?)\n\}", bib, re.S))
    assert set(make_readme.CITATIONS) == set(entries)
    for key, (authors, year, url) in make_readme.CITATIONS.items():
        body = entries[key]
        assert re.search(rf"year\s*=\s*\{{{year}\}}", body), key
        assert url.rsplit("/", 1)[-1] in body, key
        first = re.search(r"author\s*=\s*\{(.+?),", body).group(1)
        assert authors.split()[0].replace("é", "").lower()[:4] in first.replace("{\\'e}", "").lower(), (key, first)


def test_strip_directives():
    assert minsnr_book.strip_directives("#| export\ndef f(): pass") == "def f(): pass"
    assert minsnr_book.strip_directives("#| hide\n#| eval: false\n\nimport x\n") == "import x"
    assert minsnr_book.strip_directives("#| hide") == ""
    assert minsnr_book.strip_directives("x = 1  # not #| a directive") == "x = 1  # not #| a directive"


def test_numpy_parameters():
    doc = ["Weight of the MSE.", "", "Parameters", "    snr: SNR(t) of each sample", "    target: 'x0', 'eps' or 'v'"]
    assert minsnr_book.numpy_parameters(list(doc)) == [
        "Weight of the MSE.", "", "Parameters", "----------", "snr", "    SNR(t) of each sample", "target",
        "    'x0', 'eps' or 'v'"]
    assert minsnr_book.numpy_parameters(["No parameters here."]) == ["No parameters here."]


def test_kernels_are_quiet_about_progress_bars():
    env = {"PYTHONWARNINGS": "error::DeprecationWarning"}
    minsnr_book.quiet_kernels(env)
    minsnr_book.quiet_kernels(env)  # once only
    assert env["PYTHONWARNINGS"] == "error::DeprecationWarning,ignore:IProgress not found"
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings._setoption(minsnr_book.QUIET)  # what the interpreter does with each PYTHONWARNINGS entry
        warnings.warn("IProgress not found. Please update jupyter and ipywidgets.")
        warnings.warn("another warning")
    assert [str(w.message) for w in caught] == ["another warning"]


def test_markdown_docstrings_become_rest():
    assert minsnr_book.md_to_rst("the `out_dir`, *.png and **bold**") == r"the ``out_dir``, \*.png and **bold**"
    assert minsnr_book.md_to_rst("``kept`` |x| name_ x_y") == r"``kept`` \|x\| name\_ x_y"
    assert minsnr_book.md_to_rst("Eq. (diffusion-loss) of `Eq. (x)`") == "Eq. :eq:`diffusion-loss` of ``Eq. (x)``"


@pytest.mark.slow
def test_extension_and_markdown_tables_in_a_built_page(tmp_path):
    "nbdev directives vanish from a page (a directive-only cell shows only its output), tables in outputs render."
    import nbformat
    book = one_page_book(tmp_path, "#| export\ndef double(x): return 2 * x",
                         nbformat.v4.new_code_cell("#| hide\nimport math"),
                         nbformat.v4.new_code_cell("#| default_exp core"),
                         nbformat.v4.new_code_cell("from IPython.display import Markdown, display\n"
                                                   "display(Markdown('| a | b |\\n|---|---:|\\n| 1 | 2 |'))"),
                         nbformat.v4.new_markdown_cell("| c | d |\n|---|---|\n| 3 | 4 |"))
    jb = Path(sys.executable).parent / "jupyter-book"
    build = subprocess.run([str(jb), "build", str(book), "-W"], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    html = (book / "_build" / "html" / "page.html").read_text(encoding="utf-8")
    page = parse(book / "_build" / "html" / "page.html")
    text = "".join(page.text)
    assert "#|" not in text and "def double" in text and "default_exp" not in text
    assert "import math" in text  # a #| hide cell without its remove-cell tag still shows its code, without the directive
    assert html.count('class="cell docutils') == 3, "the cell whose input was only a directive is still on the page"
    assert html.count("<table") == 2, "a markdown table (cell or output) was not rendered as a table"
    css = book / "_build" / "html" / "_static" / "minsnr_book.css"
    assert "minsnr_book.css" in html and "pre-wrap" in css.read_text(), "the stylesheet that wraps long code lines is missing"
