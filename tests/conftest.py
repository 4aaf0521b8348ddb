import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def built_book() -> Path:
    "The HTML book in _build/html; `make test` builds it before pytest, a bare `pytest` builds it here."
    html = ROOT / "_build" / "html"
    if not (html / "index.html").exists():
        jb = Path(sys.executable).parent / "jupyter-book"
        subprocess.run([str(jb), "build", str(ROOT), "-W", "--keep-going"], check=True, cwd=ROOT)
    return html


def toc_files() -> list[str]:
    "Every page of the book, as _toc.yml lists them (paths without suffix)."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
    return files
