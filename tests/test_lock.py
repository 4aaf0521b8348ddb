"""The lock (requirements/lock.txt) against settings.ini and against the environment `make install` built from it."""
import configparser
import shlex
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from lock_drift import canon, locked  # noqa: E402

LOCK = ROOT / "requirements" / "lock.txt"


def declared() -> list[Requirement]:
    "Every requirement settings.ini declares (the package's and the dev extra's)."
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    return [Requirement(r) for key in ("requirements", "dev_requirements") for r in shlex.split(cfg["DEFAULT"][key])]


def test_lock_names_its_platform():
    first = LOCK.read_text().splitlines()[0]
    assert first.startswith("# platform: Linux-x86_64-cp3"), first


@pytest.mark.parametrize("req", declared(), ids=str)
def test_every_declared_requirement_is_locked_within_its_range(req):
    pins = locked(str(LOCK))
    assert canon(req.name) in pins, f"{req.name} is in settings.ini but not in the lock: run 'make lock'"
    assert req.specifier.contains(pins[canon(req.name)], prereleases=True), \
        f"the lock pins {req.name}=={pins[canon(req.name)]}, outside settings.ini's {req}: run 'make lock'"


@pytest.mark.skipif(not (Path(sys.prefix) / ".installed-lock").exists(), reason="this environment was not installed from the lock")
def test_the_environment_is_the_lock():
    pins = locked(str(LOCK))
    have = {canon(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {name: (version, have.get(name)) for name, version in pins.items()
             if name not in ("pip", "setuptools") and have.get(name) != version}
    assert not wrong, f"installed versions differ from the lock (locked, installed): {wrong}"
