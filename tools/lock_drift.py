"""Which installed packages differ from the lock: `make install LOCK=0` prints this after installing the newest releases.

Usage: python tools/lock_drift.py requirements/lock.txt
"""
import re
import sys
from importlib import metadata

canon = lambda name: re.sub(r"[-_.]+", "-", name).lower()


def locked(path: str) -> dict[str, str]:
    "Package → version of every `name==version` line of a pip-compile lock."
    pins = (re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line) for line in open(path, encoding="utf-8"))
    return {canon(m[1]): m[2] for m in pins if m}


def main(path: str) -> None:
    lock = locked(path)
    have = {canon(d.metadata["Name"]): d.version for d in metadata.distributions()}
    newer = sorted((name, lock[name], have[name]) for name in lock.keys() & have.keys() if lock[name] != have[name])
    added = sorted(set(have) - set(lock) - {"minsnr", "pip", "pip-tools", "build", "pyproject-hooks", "wheel"})
    missing = sorted(set(lock) - set(have) - {"pip", "setuptools"})
    if not (newer or added or missing):
        return print(f"the newest releases are the locked ones: {path} is current")
    print(f"installed versions that differ from {path} (run the suite; if green, 'make lock' and commit):")
    for name, old, new in newer: print(f"  {name}: {old} (locked) -> {new}")
    for name in added: print(f"  {name}: not in the lock -> {have[name]}")
    for name in missing: print(f"  {name}: {lock[name]} (locked) -> no longer required")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "requirements/lock.txt")
