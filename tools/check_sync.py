"""Is the working tree in sync with its source notebooks? Runs what `make prepare` runs (nbdev_export, nbdev_clean,
the README generation) on a scratch copy of the tree and compares the result with the working tree, so it judges
uncommitted edits too and never rewrites a file of yours. Exit 1 with the list of files that differ and what to run.

Usage: python tools/check_sync.py [--bin DIR]   (DIR holds nbdev_export, nbdev_clean; default: this python's bin)
"""
import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# what the generators read, and what they write (compared afterwards)
COPIED = ["settings.ini", "pyproject.toml", "setup.py", "README.md", "nbs", "minsnr", "tools"]
GENERATED = ["minsnr", "nbs", "README.md", "pyproject.toml"]
IGNORED = {"__pycache__", ".ipynb_checkpoints"}


def tree_files(base: Path, rel: str) -> set[str]:
    "Paths (relative to base) of the files under base/rel, or {rel} for a file."
    root = base / rel
    if root.is_file(): return {rel}
    if not root.exists(): return set()
    return {str(p.relative_to(base)) for p in root.rglob("*") if p.is_file() and not IGNORED & set(p.parts)}


def differences(ours: Path, theirs: Path) -> list[str]:
    "Generated paths that differ between the working tree and the regenerated copy, as 'path (why)'."
    out = []
    for rel in GENERATED:
        a, b = tree_files(ours, rel), tree_files(theirs, rel)
        out += [f"{p} (would be created)" for p in sorted(b - a)]
        out += [f"{p} (would change)" for p in sorted(a & b) if not filecmp.cmp(ours / p, theirs / p, shallow=False)]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent, help="folder of nbdev_export etc.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minsnr-sync-") as tmp:
        scratch = Path(tmp)
        for rel in COPIED:
            src = ROOT / rel
            if src.is_dir(): shutil.copytree(src, scratch / rel, ignore=shutil.ignore_patterns(*IGNORED))
            elif src.exists(): shutil.copy2(src, scratch / rel)
        (scratch / "minsnr").mkdir(exist_ok=True)
        for cmd in ([args.bin / "nbdev_export"], [args.bin / "nbdev_clean"],
                    [args.bin / "python", "tools/make_readme.py", "README.md"]):
            subprocess.run([str(c) for c in cmd], cwd=scratch, check=True, stdout=subprocess.DEVNULL)
        diff = differences(ROOT, scratch)
    if diff:
        print("out of sync with the notebooks in nbs/ (nbdev_export / nbdev_clean / README generation would change):")
        print("\n".join(f"  {d}" for d in diff))
        print("run 'make prepare', check the changes, and commit the notebooks together with what they generate")
        return 1
    print("minsnr/, README.md and the notebooks are in sync with nbs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
