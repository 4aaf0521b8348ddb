"""README.md from nbs/index.ipynb: the front page without its book-only cells (the glue code, the glued results and
the figure), with the book's links and citations rewritten for a reader of the repository: a link to a page
(`01_schedule.ipynb`, `../book/install.md`) points at its file from the repository root, and a MyST citation
(`{cite:p}` / `{cite:t}`) becomes the author-year text linked to the paper.

Usage: python tools/make_readme.py [README.md]
"""
import re
import sys

import jupytext

# every key the front page cites: author-year text and address (tests/test_book.py checks them against
# book/references.bib, which this script does not read: the sync check regenerates README from nbs/ and tools/ alone)
CITATIONS = {
    "hang2023minsnr": ("Hang et al.", "2023", "https://arxiv.org/abs/2303.09556"),
    "karras2022edm": ("Karras et al.", "2022", "https://arxiv.org/abs/2206.00364"),
    "karras2024edm2": ("Karras et al.", "2024", "https://arxiv.org/abs/2312.02696"),
    "nichol2021improved": ("Nichol and Dhariwal", "2021", "https://arxiv.org/abs/2102.09672"),
    "ho2020ddpm": ("Ho et al.", "2020", "https://arxiv.org/abs/2006.11239"),
    "salimans2022progressive": ("Salimans and Ho", "2022", "https://arxiv.org/abs/2202.00512"),
    "choi2022p2": ("Choi et al.", "2022", "https://arxiv.org/abs/2204.00227"),
    "kingma2023elbo": ("Kingma and Gao", "2023", "https://arxiv.org/abs/2303.00848"),
    "lin2024zeroterminal": ("Lin et al.", "2024", "https://arxiv.org/abs/2305.08891"),
    "esser2024sd3": ("Esser et al.", "2024", "https://arxiv.org/abs/2403.03206"),
    "peebles2023dit": ("Peebles and Xie", "2023", "https://arxiv.org/abs/2212.09748"),
    "sener2018mgda": ("Sener and Koltun", "2018", "https://arxiv.org/abs/1810.04650"),
    "desideri2012mgda": ("Désidéri", "2012", "https://doi.org/10.1016/j.crma.2012.03.014"),
    "xu2024consistency": ("Xu et al.", "2024", "https://arxiv.org/abs/2404.07946"),
    "yu2024debiased": ("Yu et al.", "2024", "https://arxiv.org/abs/2310.08442"),
}
CITE = re.compile(r"\{cite:(p|t)\}`([^`]+)`")
LINK = re.compile(r"\]\((?!https?:|#|/)([^)\s]+)\)")


def cite(match: re.Match) -> str:
    "One MyST citation (one or more keys) as linked author-year text."
    style, keys = match.group(1), [k.strip() for k in match.group(2).split(",")]
    unknown = [k for k in keys if k not in CITATIONS]
    if unknown: raise SystemExit(f"make_readme.py: unknown citation key(s) {unknown}; add them to CITATIONS (known: {', '.join(CITATIONS)})")
    if style == "t": return "; ".join(f"[{CITATIONS[k][0]} ({CITATIONS[k][1]})]({CITATIONS[k][2]})" for k in keys)
    return "(" + "; ".join(f"[{CITATIONS[k][0]}, {CITATIONS[k][1]}]({CITATIONS[k][2]})" for k in keys) + ")"


def link(match: re.Match) -> str:
    "A link relative to nbs/ (where the front page lives), made relative to the repository root."
    target = match.group(1)
    return f"]({target[3:] if target.startswith('../') else 'nbs/' + target})"


def readme_text(text: str) -> str:
    "A markdown cell of the front page as the README shows it."
    return LINK.sub(link, CITE.sub(cite, text))


def main() -> None:
    nb = jupytext.read("nbs/index.ipynb")
    keep = lambda tags: "readme-only" in tags or not {"remove-cell", "book-only"} & tags
    nb.cells = [c for c in nb.cells if keep(set(c.metadata.get("tags", [])))]
    for c in nb.cells:
        c.metadata = {}
        if c.cell_type == "markdown": c.source = readme_text(c.source)
    nb.metadata = {"jupytext": {"notebook_metadata_filter": "-all", "cell_metadata_filter": "-all"}}
    jupytext.write(nb, sys.argv[1] if len(sys.argv) > 1 else "README.md", fmt="md")


if __name__ == "__main__":
    main()
