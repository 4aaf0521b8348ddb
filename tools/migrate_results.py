"""Bring the stored results to the current content-addressed store of `minsnr.experiments` (never re-runs anything).

Two kinds of file are rewritten, each under `<suite>/<name>_<hash>.json` (`result_path`) with its spec, name, hash and
command:

- a legacy record (named by `RunSpec.name` only): its spec as recorded, the result as it was;
- a store record whose RunSpec lacks `train_config` (the full resolved TrainConfig, which the hash now covers): its
  spec re-keyed with the TrainConfig that its stated fields resolve to today (the stored results were made with those
  defaults and the pins each spec states), its name, command and result unchanged.

- a store record made before TrainConfig gained fields whose defaults keep the old behaviour (the trainer's tests
  show the default path bit-identical): when every recorded field equals today's resolution and every field it lacks
  is at its default, its spec is re-keyed with the added fields, which it records under `added_fields`.
- a store record whose TrainConfig resolved a field by a default that has changed since: its spec is re-keyed with
  that field pinned at the value it was trained with (as its spec function now pins it), when the pinned spec
  resolves to exactly the recorded TrainConfig; the record lists the fields under `pinned_fields`.

Before deleting anything it verifies that no two files map to one, that no new file exists already, that every new
file's recorded spec re-hashes to its name, that `load_result` finds it, and that its result is the old one.

    .venv/bin/python tools/migrate_results.py [--results book/results] [--dry-run]
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

from minsnr.experiments import ConflictSpec, RunSpec, load_result, result_path, save_result, spec_hash
from minsnr.trainer import TrainConfig

SUITES = ("digits", "photo", "conflict", "pareto")  # summary/ holds the pages' summaries, not store records
PARETO_COMMAND = "papermill nbs/exp_pareto.ipynb nbs/exp_pareto.ipynb --cwd ."
BOOKKEEPING = ("spec", "name", "hash", "command")  # the fields of a store record that are not its result


class StoredSpec:
    "A spec known only by its recorded JSON (the Pareto analysis is defined in its notebook)."
    def __init__(self, suite: str, name: str, data: dict): self.suite, self.name, self.data = suite, name, data
    def to_json(self) -> dict: return self.data


def is_migrated(path: Path, record: dict) -> bool:
    "A store record: it has a hash, and its file name ends in it."
    return "hash" in record and path.stem.endswith("_" + record["hash"])


def stated(run: RunSpec) -> dict:
    "A RunSpec's JSON without the resolved TrainConfig: what a record made before it was hashed holds."
    return {k: v for k, v in run.to_json().items() if k != "train_config"}


def run_of(data: dict) -> RunSpec:
    "The RunSpec a recorded spec describes: checked by `RunSpec.from_json`, or, lacking `train_config`, round-tripped."
    if "train_config" in data: return RunSpec.from_json(data)
    run = RunSpec(**data)
    if stated(run) != data: raise ValueError(f"the recorded spec does not round-trip: {data}")
    return run


def is_current(suite: str, record: dict) -> bool:
    "A store record whose spec holds the resolved TrainConfig (a Pareto record states its full TrainConfig already)."
    spec = record["spec"]
    return suite == "pareto" or "train_config" in (spec["pretrain"] if suite == "conflict" else spec)


def new_record(suite: str, old: dict):
    "The spec of an old legacy record and the result to store with it (everything but the spec bookkeeping)."
    rest = {k: v for k, v in old.items() if k not in ("spec", "name", "settings", "config")}
    if suite == "pareto":
        spec = StoredSpec("pareto", f"seed{old['seed']}", old["config"])
        rest.pop("command", None)
        return spec, rest, old.get("command", PARETO_COMMAND)
    run = run_of(old["spec"])
    if suite == "conflict":
        settings = old["settings"]
        spec = ConflictSpec(run, bands=settings["bands"], finetune_steps=settings["finetune_steps"], per_bin=settings["per_bin"])
        return spec, rest, "minsnr.experiments.run_suite(conflict_specs())"
    if old.get("name") not in (None, run.name): raise ValueError(f"recorded name {old['name']!r} is not the spec's {run.name!r}")
    return run, rest, "minsnr.experiments.run_suite"


def rehashed_record(suite: str, old: dict):
    "The spec of a store record lacking the resolved TrainConfig, its result and command (both unchanged)."
    data = old["spec"]
    if suite == "conflict":
        fields = {k: v for k, v in data.items() if k != "pretrain"}
        spec = ConflictSpec(run_of(data["pretrain"]), **fields)
        if {k: v for k, v in spec.to_json().items() if k != "pretrain"} != fields:
            raise ValueError(f"the recorded spec does not round-trip: {data}")
    else:
        spec = run_of(data)
    if old["name"] != spec.name: raise ValueError(f"recorded name {old['name']!r} is not the spec's {spec.name!r}")
    return spec, {k: v for k, v in old.items() if k not in BOOKKEEPING}, old["command"]


def _plain(value): return json.loads(json.dumps(value))


def added_defaults(recorded: dict, today: dict) -> list[str] | None:
    "The fields `today` adds to `recorded` when they are all at TrainConfig's defaults and nothing else differs; else None."
    defaults = {f.name: _plain(f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for f in dataclasses.fields(TrainConfig)}
    added = sorted(today.keys() - recorded.keys())
    if recorded.keys() - today.keys() or any(recorded[k] != today[k] for k in recorded): return None
    if any(today[k] != defaults[k] for k in added): return None
    return added


def extended_record(suite: str, old: dict):
    "For a store record whose TrainConfig lacks fields added since at their defaults: (spec, result, command, added)."
    data = old["spec"]
    if suite == "pareto":
        today = {**{f.name: _plain(getattr(TrainConfig(), f.name)) for f in dataclasses.fields(TrainConfig)}, **data["train"]}
        today.pop("out_dir", None)
        added = added_defaults(data["train"], today)
        if not added: return None
        spec = StoredSpec("pareto", old["name"], {**data, "train": today})
    else:
        run_data = data["pretrain"] if suite == "conflict" else data
        run = RunSpec(**{k: v for k, v in run_data.items() if k != "train_config"})
        added = added_defaults(run_data["train_config"], run.resolved_config())
        if not added: return None
        spec = ConflictSpec(run, **{k: v for k, v in data.items() if k != "pretrain"}) if suite == "conflict" else run
    if old["name"] != spec.name: raise ValueError(f"recorded name {old['name']!r} is not the spec's {spec.name!r}")
    rest = {k: v for k, v in old.items() if k not in BOOKKEEPING and k != "added_fields"}
    return spec, {**rest, "added_fields": sorted(set(old.get("added_fields", [])) | set(added))}, old["command"], rest


def pinned_record(suite: str, old: dict):
    "For a RunSpec store record whose recorded TrainConfig a changed default no longer resolves: (spec, result, command, kept)."
    data = old["spec"]
    if suite in ("pareto", "conflict") or "train_config" not in data: return None
    recorded = data["train_config"]
    fields = {k: v for k, v in data.items() if k != "train_config"}
    today = RunSpec(**fields).resolved_config()
    changed = sorted(k for k in recorded if k in today and recorded[k] != today[k])
    if not changed or today.keys() != recorded.keys() or set(changed) & set(data["config"]): return None
    spec = RunSpec(**{**fields, "config": {**data["config"], **{k: recorded[k] for k in changed}}})
    if spec.resolved_config() != recorded: return None  # the pins alone must give back what it was trained with
    if old["name"] != spec.name: raise ValueError(f"recorded name {old['name']!r} is not the spec's {spec.name!r}")
    rest = {k: v for k, v in old.items() if k not in BOOKKEEPING and k != "pinned_fields"}
    pinned = sorted(set(old.get("pinned_fields", [])) | set(changed))
    return spec, {**rest, "pinned_fields": pinned}, old["command"], {**rest, "pinned_fields": pinned}


def main(results: Path, dry_run: bool) -> int:
    plan = []  # (old path, spec, result to store, command, the old file's result: what the new file must hold)
    for suite in SUITES:
        for path in sorted((results / suite).glob("*.json")):
            old = json.loads(path.read_text())
            if is_migrated(path, old):
                if is_current(suite, old):
                    pinned = pinned_record(suite, old)
                    if pinned is not None:
                        plan.append((path, *pinned))
                        continue
                    extended = extended_record(suite, old)
                    if extended is None: continue
                    spec, result, command, kept = extended
                    plan.append((path, spec, result, command, {**kept, "added_fields": result["added_fields"]}))
                    continue
                spec, rest, command = rehashed_record(suite, old)
                plan.append((path, spec, rest, command, rest))
            else:
                spec, rest, command = new_record(suite, old)
                kept = {k: v for k, v in old.items() if k not in ("spec", "name", "settings", "config", "command")}
                origin = {"migrated_from": f"{suite}/{path.name}"}
                plan.append((path, spec, {**rest, **origin}, command, {**kept, **origin}))
    targets = [result_path(spec, results) for _, spec, *_ in plan]
    clash = {t for t in targets if targets.count(t) > 1}
    if clash: raise SystemExit(f"two old files map to one new file: {sorted(map(str, clash))}")
    taken = [t for t in targets if t.exists()]
    if taken: raise SystemExit(f"new files exist already (nothing changed): {sorted(map(str, taken))}")
    print(f"{len(plan)} result files to rewrite under {results}")
    if dry_run:
        for (path, *_), target in zip(plan, targets): print(f"  {path.relative_to(results)} -> {target.relative_to(results)}")
        return 0
    for (path, spec, result, command, kept), target in zip(plan, targets):
        save_result(spec, result, results, command)
        stored = json.loads(target.read_text())
        assert target.stem == f"{spec.name}_{spec_hash(stored['spec'])}", target  # the recorded spec re-hashes to the name
        assert load_result(spec, results) == stored, target
        assert {k: v for k, v in stored.items() if k not in BOOKKEEPING} == kept, target  # the result is the old one
    for path, *_ in plan: path.unlink()
    print(f"rewrote {len(plan)} files; {len(plan)} old files deleted")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("book/results"), help="the store's root")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    args = parser.parse_args()
    sys.exit(main(args.results, args.dry_run))
