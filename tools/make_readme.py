"README.md from nbs/index.ipynb: the front page without its book-only cells (the glue code and the glued results)."
import sys

import jupytext

nb = jupytext.read("nbs/index.ipynb")
keep = lambda tags: "readme-only" in tags or not {"remove-cell", "book-only"} & tags
nb.cells = [c for c in nb.cells if keep(set(c.metadata.get("tags", [])))]
for c in nb.cells: c.metadata = {}
nb.metadata = {"jupytext": {"notebook_metadata_filter": "-all", "cell_metadata_filter": "-all"}}
jupytext.write(nb, sys.argv[1] if len(sys.argv) > 1 else "README.md", fmt="md")
