"""Execute the notebooks that the book build executes, several at a time, into the build's execution cache.

Jupyter Book 1.x executes notebooks one after the other; this runs the same executions (same working directory,
timeout and error policy as `_config.yml` asks for) in parallel worker processes, each kernel limited to its share
of the cores, and stores them in `_build/.jupyter_cache`, where the build then finds them. A notebook that is
already cached with the same code is skipped, unless it reads the stored results (`book/results/`) and one of them
changed since it ran; one whose cell raises prints the traceback and fails (exit 1).

Usage: python tools/execute_book.py [--jobs N] [--root BOOK]
"""
import argparse
import fnmatch
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
import yaml



def book_notebooks(root: Path) -> list[Path]:
    "The .ipynb pages of root/_toc.yml (sections included) that root/_config.yml does not exclude from execution."
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    def walk(entries):  # chapters and their sections, in order
        for entry in entries:
            yield entry["file"]
            yield from walk(entry.get("sections", []))
    pages = [toc["root"], *walk(ch for part in toc.get("parts", []) for ch in part["chapters"])]
    excluded = yaml.safe_load((root / "_config.yml").read_text())["execute"].get("exclude_patterns", [])
    return [root / f"{p}.ipynb" for p in pages
            if (root / f"{p}.ipynb").exists() and not any(fnmatch.fnmatch(f"{p}.ipynb", pat) for pat in excluded)]


def newest_result(root: Path) -> float:
    "When a result file under root/book/results last changed (0 when there are none)."
    return max((p.stat().st_mtime for p in (root / "book" / "results").rglob("*.json")), default=0.0)


def reads_results(nb: nbformat.NotebookNode) -> bool:
    "Whether a notebook's code reads the stored results (the front page, the reproduced tables)."
    return any(c.cell_type == "code" and ("book/results" in c.source or '"results"' in c.source) for c in nb.cells)


def execute(path: Path, timeout: int) -> tuple[Path, nbformat.NotebookNode, float, str | None]:
    "Run one notebook in its own folder: (path, executed notebook, seconds, traceback or None)."
    from jupyter_cache.executors.utils import single_nb_execution
    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(path.parent), timeout=timeout, allow_errors=False, meta_override=True)
    return path, nb, result.time, result.exc_string if result.err is not None else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="notebooks executed at a time")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="the book's folder")
    args = parser.parse_args()
    if args.jobs < 1: parser.error(f"--jobs must be ≥ 1, got {args.jobs}")
    from jupyter_cache import get_cache
    from jupyter_cache.cache.main import CacheBundleIn
    root = args.root.resolve()
    timeout = yaml.safe_load((root / "_config.yml").read_text())["execute"].get("timeout", 600)
    cache = get_cache(str(root / "_build" / ".jupyter_cache"))  # where jupyter-book looks
    todo, newest = [], newest_result(root)
    for path in book_notebooks(root):
        nb = nbformat.read(path, as_version=4)
        try: record = cache.match_cache_notebook(nb)
        except KeyError: todo.append(path); continue
        if reads_results(nb) and record.created.timestamp() < newest:  # the cache knows the code, not the data it reads
            cache.remove_cache(record.pk)
            todo.append(path)
    if not todo: return print("every book notebook is in the execution cache") or 0
    # each kernel gets its share of the cores: several torch processes each spinning on every core are far slower
    threads = max(1, (os.cpu_count() or 1) // min(args.jobs, len(todo)))
    os.environ.update({v: str(threads) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
    from minsnr_book import quiet_kernels  # the kernels run as the book build runs them
    quiet_kernels()
    start, failed = time.time(), []
    print(f"executing {len(todo)} notebooks, {args.jobs} at a time, {threads} thread(s) each")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for path, nb, seconds, error in pool.map(execute, todo, [timeout] * len(todo)):
            name = path.relative_to(root)
            if error:
                failed.append(name)
                print(f"{name}: a cell raised\n{error}", file=sys.stderr)
                continue
            cache.cache_notebook_bundle(CacheBundleIn(nb, str(path), data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"  {name}: {seconds:.1f} s")
    print(f"executed in {time.time() - start:.0f} s")
    if failed:
        print(f"execution failed in {', '.join(map(str, failed))}: the book is not built with a traceback", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
