"""Rename the stored results to the content-addressed store of `minsnr.experiments` (never re-runs anything).

Each old file records its spec; this writes the same record under `<suite>/<name>_<hash>.json` (`result_path`),
with its spec, name, hash and command, verifies that every old file maps to exactly one new file whose recorded spec
re-hashes to its name and whose result is the old one, and only then deletes the old files.

    .venv/bin/python tools/migrate_results.py [--results book/results] [--dry-run]
"""
import argparse
import json
import sys
from pathlib import Path

from minsnr.experiments import ConflictSpec, RunSpec, load_result, result_path, save_result, spec_hash

SUITES = ("digits", "photo", "conflict", "pareto")  # summary/ holds the pages' summaries, not store records
PARETO_COMMAND = "papermill nbs/exp_pareto.ipynb nbs/exp_pareto.ipynb --cwd ."


class StoredSpec:
    "A spec known only by its recorded JSON (the Pareto analysis is defined in its notebook)."
    def __init__(self, suite: str, name: str, data: dict): self.suite, self.name, self.data = suite, name, data
    def to_json(self) -> dict: return self.data


def is_migrated(path: Path, record: dict) -> bool:
    "A store record: it has a hash, and its file name ends in it."
    return "hash" in record and path.stem.endswith("_" + record["hash"])


def new_record(suite: str, old: dict):
    "The spec of an old record and the result to store with it (everything but the spec bookkeeping)."
    rest = {k: v for k, v in old.items() if k not in ("spec", "name", "settings", "config")}
    if suite == "pareto":
        spec = StoredSpec("pareto", f"seed{old['seed']}", old["config"])
        rest.pop("command", None)
        return spec, rest, old.get("command", PARETO_COMMAND)
    run = RunSpec(**old["spec"])
    if run.to_json() != old["spec"]: raise ValueError(f"the recorded spec does not round-trip: {old['spec']}")
    if suite == "conflict":
        settings = old["settings"]
        spec = ConflictSpec(run, bands=settings["bands"], finetune_steps=settings["finetune_steps"], per_bin=settings["per_bin"])
        return spec, rest, "minsnr.experiments.run_suite(conflict_specs())"
    if old.get("name") not in (None, run.name): raise ValueError(f"recorded name {old['name']!r} is not the spec's {run.name!r}")
    return run, rest, "minsnr.experiments.run_suite"


def main(results: Path, dry_run: bool) -> int:
    plan = []  # (old path, spec, result, command)
    for suite in SUITES:
        for path in sorted((results / suite).glob("*.json")):
            old = json.loads(path.read_text())
            if is_migrated(path, old): continue
            spec, rest, command = new_record(suite, old)
            plan.append((path, spec, {**rest, "migrated_from": f"{suite}/{path.name}"}, command))
    targets = [result_path(spec, results) for _, spec, _, _ in plan]
    clash = {t for t in targets if targets.count(t) > 1}
    if clash: raise SystemExit(f"two old files map to one new file: {sorted(map(str, clash))}")
    taken = [t for t in targets if t.exists()]
    if taken: raise SystemExit(f"new files exist already (nothing changed): {sorted(map(str, taken))}")
    print(f"{len(plan)} old result files to migrate under {results}")
    if dry_run:
        for (path, *_), target in zip(plan, targets): print(f"  {path.relative_to(results)} -> {target.relative_to(results)}")
        return 0
    for (path, spec, result, command), target in zip(plan, targets):
        save_result(spec, result, results, command)
        stored = json.loads(target.read_text())
        assert target.stem == f"{spec.name}_{spec_hash(stored['spec'])}", target  # the recorded spec re-hashes to the name
        assert load_result(spec, results) == stored, target
        old = json.loads(path.read_text())
        kept = {k: v for k, v in stored.items() if k not in ("spec", "name", "hash", "command", "migrated_from")}
        assert kept == {k: v for k, v in old.items() if k not in ("spec", "name", "settings", "config", "command")}, target
    for path, *_ in plan: path.unlink()
    print(f"migrated {len(plan)} files; {len(plan)} old files deleted")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("book/results"), help="the store's root")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    args = parser.parse_args()
    sys.exit(main(args.results, args.dry_run))
