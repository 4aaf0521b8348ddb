"""Sphinx extension for the minsnr book.

* nbdev's directive lines (``#| export``, ``#| hide``, ``#| default_exp …``) are instructions to nbdev, not code a
  reader needs: they are stripped from every notebook code cell's input as it is read; a cell whose input is then
  empty shows its output only, and a cell with neither disappears.
* The notebooks this build executes run with tqdm's "IProgress not found" warning silenced (it names a local path
  and says nothing about the book): ``PYTHONWARNINGS`` is set before any kernel starts, and kernels inherit it.
* The bibliography lists its entries under author-year labels ("Hang et al. 2023"), as the citations in the text
  read, sorted by author (the pybtex style ``authoryear``).
* ``minsnr.core.document`` appends the parameters' comments to each public docstring as a block
  ``Parameters`` / ``    name: comment`` (what ``help()`` shows); for the API reference it is rewritten into a
  numpy-style section, which napoleon turns into the usual parameter list; the docstrings' Markdown (`code`,
  a stray ``*``) becomes reST, and an ``Eq. (label)`` becomes the equation's number, linked to its page.
"""
from __future__ import annotations

import os
import re

from docutils import nodes
from sphinx.transforms import SphinxTransform

DIRECTIVE = re.compile(r"^\s*#\|")


def strip_directives(code: str) -> str:
    "`code` without its nbdev directive lines (and without the blank lines they leave at the top)."
    kept = [line for line in code.splitlines() if not DIRECTIVE.match(line)]
    while kept and not kept[0].strip(): kept.pop(0)
    return "\n".join(kept).rstrip()


class StripNbdevDirectives(SphinxTransform):
    "Remove `#|` lines from notebook code-cell inputs; drop inputs (and cells) left empty."
    default_priority = 100  # while reading, before myst-nb's hide-input post-transform wraps the inputs

    def apply(self, **kwargs) -> None:
        for cell in list(self.document.findall(nodes.container)):
            if cell.get("nb_element") != "cell_code": continue
            for source in [c for c in cell.children if c.get("nb_element") == "cell_code_source"]:
                for block in list(source.findall(nodes.literal_block)):
                    code = block.astext()
                    if not any(DIRECTIVE.match(l) for l in code.splitlines()): continue
                    stripped = strip_directives(code)
                    if stripped:
                        block.rawsource = stripped
                        block.children = [nodes.Text(stripped)]
                    else:
                        block.parent.remove(block)
                if not any(isinstance(n, nodes.literal_block) for n in source.findall(nodes.literal_block)):
                    cell.remove(source)
            if not cell.children: cell.parent.remove(cell)


PARAM_LINE = re.compile(r"^ {4}(\*{0,2}[A-Za-z_]\w*): ?(.*)$")
LITERAL = re.compile(r"(``.+?``|`[^`]+`)")
EQ_LABEL = re.compile(r"\bEq\. \(([a-z][a-z0-9]*(?:-[a-z0-9]+)*)\)")  # "Eq. (diffusion-loss)": a label of the book


def md_to_rst(text: str) -> str:
    "The docstrings are written as Markdown (`code`, *.png): one line of it as reST (``code``, \\*.png)."
    out = []
    for i, part in enumerate(LITERAL.split(text)):
        if i % 2:  # a code span: a literal in reST
            out.append(part if part.startswith("``") else f"``{part[1:-1]}``")
            continue
        part = part.replace("**", "\0").replace("*", r"\*").replace("\0", "**")  # stray * would start emphasis
        part = part.replace("|", r"\|")  # |x| would be a substitution
        part = re.sub(r"(\w)_(?=\W|$)", r"\1\_", part)  # name_ would be a reference
        part = EQ_LABEL.sub(r"Eq. :eq:`\1`", part)  # the equation's number, linked to the page that derives it
        out.append(part)
    return "".join(out)


def numpy_parameters(lines: list[str]) -> list[str]:
    "Markdown lines as reST, and document()'s `Parameters` block (`    name: comment` lines) as a numpy-style section, in place."
    start = next((i for i, l in enumerate(lines) if l.strip() == "Parameters" and i + 1 < len(lines)
                  and PARAM_LINE.match(lines[i + 1])), len(lines))
    lines[:start] = [md_to_rst(l) for l in lines[:start]]
    for i, line in enumerate(lines):
        if line.strip() != "Parameters" or i + 1 >= len(lines) or not PARAM_LINE.match(lines[i + 1]): continue
        j, params = i + 1, []
        while j < len(lines) and (m := PARAM_LINE.match(lines[j])):
            params.append((m.group(1), m.group(2)))
            j += 1
        block = ["Parameters", "----------"]
        for name, text in params:
            block += [name, f"    {md_to_rst(text)}" if text else "    (no comment)"]
        lines[i:j] = block + ([""] if j < len(lines) and lines[j].strip() else [])
        break
    return lines


def author_year_label(entry) -> str:
    "The label of a bibliography entry: 'Hang et al. 2023', 'Nichol and Dhariwal 2021', 'Désidéri 2012'."
    from pybtex.richtext import Text
    names = [Text.from_latex(" ".join(p.last_names)).render_as("text") for p in entry.persons.get("author", [])]
    who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
    return f"{who} {entry.fields.get('year', '')}".strip()


def register_author_year_style() -> None:
    "Register the pybtex formatting style `authoryear`: plain entries with author-year labels."
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.plain import Style as Plain
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            for entry in sorted_entries: yield author_year_label(entry)

    class AuthorYear(Plain):
        default_label_style = AuthorYearLabels
        default_sorting_style = "author_year_title"

    register_plugin("pybtex.style.formatting", "authoryear", AuthorYear, force=True)


def _unnumbered_equation(app, env, node, contnode):
    "A docstring's `Eq. (label)` whose label no page defines stays as it was written (no warning on API pages)."
    if node.get("refdomain") == "math" and node.get("reftype") == "eq" and node.get("refdoc", "").startswith("book/api/"):
        return nodes.Text(f"({node['reftarget']})")
    return None


def _process_docstring(app, what, name, obj, options, lines):
    numpy_parameters(lines)


QUIET = "ignore:IProgress not found"  # tqdm.auto in a kernel without ipywidgets


def quiet_kernels(environ=os.environ) -> None:
    "Add the warning filters of the book's kernels to PYTHONWARNINGS (kept: whatever it already holds)."
    held = [f for f in environ.get("PYTHONWARNINGS", "").split(",") if f]
    if QUIET not in held: environ["PYTHONWARNINGS"] = ",".join([*held, QUIET])


def _add_static(app):
    "The book's stylesheet: code lines wrap at the column, wide equations scroll (book/_ext/static)."
    import os
    static = os.path.join(os.path.dirname(__file__), "static")
    app.config.html_static_path = [*app.config.html_static_path, static]


def setup(app):
    quiet_kernels()
    app.connect("builder-inited", _add_static)
    app.add_css_file("minsnr_book.css")
    register_author_year_style()
    app.add_transform(StripNbdevDirectives)
    app.setup_extension("sphinx.ext.napoleon")
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)  # napoleon (500) reads it afterwards
    app.connect("missing-reference", _unnumbered_equation)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
