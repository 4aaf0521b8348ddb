"""The experiment notebooks of the Reproduction part re-run from the stored result files, and the result files are sound."""
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import papermill
import pytest

import minsnr.experiments as experiments
from minsnr.experiments import (DIGITS_BENCHMARK, ConflictSpec, RunSpec, precision_check_specs,
                                converged_conflict_specs, load_result, photo_specs,
                                result_path, run_suite, save_result, spec_hash, spread, tuning_specs,
                                unet_grid_specs, vit_beyond_specs, vit_gamma_specs, vit_grid_specs, vit_long_specs)
from minsnr.trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "book" / "results"
# the converged benchmark's suites (trained over several sittings: they may be partly stored) and its tuning runs
CONVERGED_SPECS = (vit_grid_specs() + [s for s in vit_gamma_specs() + vit_beyond_specs() if s not in vit_grid_specs()]
                   + unet_grid_specs() + vit_long_specs() + precision_check_specs() + converged_conflict_specs()
                   + tuning_specs())
STORE_SUITES = ("photo", "conflict", "pareto", "converged", "long", "precision", "tuning")


def test_every_stored_record_is_named_by_the_hash_of_its_spec():
    "A record's file name is its name and the hash of the spec it records (so no file can hold another spec's result)."
    paths = [p for suite in STORE_SUITES for p in (RESULTS / suite).glob("*.json")]
    assert paths, "no stored results: run the experiment notebooks"
    for path in paths:
        record = json.loads(path.read_text())
        assert path.stem == f"{record['name']}_{spec_hash(record['spec'])}" and record["hash"] == spec_hash(record["spec"]), path.name
        assert record["command"], path.name


def test_every_stored_result_matches_its_spec_and_is_complete():
    "A result file belongs to a spec of the current suites (else it is stale) and has every evaluation it promised."
    stored = {p.resolve() for suite in ("photo", "conflict", "converged", "long", "precision", "tuning") for p in (RESULTS / suite).glob("*.json")}
    by_path = {result_path(s, RESULTS).resolve(): s for s in photo_specs() + CONVERGED_SPECS}
    assert stored <= set(by_path), f"result files of no current spec: {sorted(p.name for p in stored - set(by_path))}"
    for path in stored:
        spec, result = by_path[path], json.loads(path.read_text())
        assert load_result(spec, RESULTS) == result, path.name
        if isinstance(spec, RunSpec) and result["status"] == "finished":
            assert [e["step"] for e in result["evals"]] == list(spec.eval_steps), path.name
            assert result["metrics"][-1]["step"] == spec.train_config("x").steps, path.name


def test_every_stored_spec_records_the_trainconfig_it_resolves_to_today():
    "Each record of a RunSpec (or a ConflictSpec's pre-training) holds the full resolved TrainConfig, and today's defaults give the same."
    for suite, cls in (("photo", RunSpec), ("conflict", ConflictSpec), ("converged", RunSpec), ("long", RunSpec), ("precision", RunSpec),
                       ("tuning", RunSpec)):
        for path in (RESULTS / suite).glob("*.json"):
            recorded = json.loads(path.read_text())["spec"]
            assert cls.from_json(recorded).to_json() == recorded, path.name


def seeds_by_setting(specs) -> dict:
    "{setting: stored seeds}, a setting being a spec's suite and name without its seed."
    settings = {}
    for spec in specs:
        seeds = settings.setdefault(spec.suite + "/" + spec.name.rsplit("_s", 1)[0], set())
        if load_result(spec, RESULTS) is not None: seeds.add(spec.to_json().get("seed", spec.to_json().get("pretrain", {}).get("seed")))
    return settings


def test_at_least_three_seeds_per_setting():
    "Every setting of the photo-patches check, Figure 2, Table 2, beyond the paper, Figure 5's grid, its 4800-step runs and the UNet grid (Table 1) has ≥ 3 seeds stored (the figures show the spread over them)."
    settings = seeds_by_setting(photo_specs() + converged_conflict_specs() + vit_gamma_specs() + vit_beyond_specs()
                                + vit_grid_specs() + vit_long_specs() + unet_grid_specs())
    few = {k: sorted(v) for k, v in settings.items() if len(v) < 3}
    assert settings and not few, f"settings with fewer than 3 seeds: {few}"


def test_five_seeds_for_figure_5s_vit_grid():
    "Figure 5's ViT grid (4 weightings × x0, ε, v × both schedules) has ≥ 5 seeds stored: the speed-ups are paired over them."
    settings = seeds_by_setting(vit_grid_specs())
    few = {k: sorted(v) for k, v in settings.items() if len(v) < 5}
    assert len(settings) == 24 and not few, f"settings with fewer than 5 seeds: {few}"


class CountingSpec:
    "A spec whose result costs nothing: it counts how often it is computed."
    suite = "fake"
    computed = []

    def __init__(self, value: float, lr: float = 1e-3): self.value, self.lr = value, lr
    @property
    def name(self) -> str: return f"v{self.value:g}"
    def to_json(self) -> dict: return {"value": self.value, "lr": self.lr}
    def run(self, out_dir: Path) -> dict:
        CountingSpec.computed.append(self.to_json())
        return {"value": self.value * 2}


@pytest.fixture
def counting():
    CountingSpec.computed = []
    return CountingSpec


def test_specs_differing_only_in_lr_get_different_files(tmp_path):
    a = RunSpec("digits", DIGITS_BENCHMARK)
    b = RunSpec("digits", {**DIGITS_BENCHMARK, "lr": 2e-3})
    assert a.name == b.name and result_path(a, tmp_path) != result_path(b, tmp_path)
    assert result_path(a, tmp_path).parent == result_path(b, tmp_path).parent == tmp_path / "digits"
    c = RunSpec("digits", {**DIGITS_BENCHMARK, "dataset": "photo-patches", "model_kwargs": {"embed_dim": 64, "patch_size": 4}})
    assert result_path(c, tmp_path) not in (result_path(a, tmp_path), result_path(b, tmp_path))


@dataclass
class ChangedDefault(TrainConfig):
    "TrainConfig with one default changed, as a later version of the package might have it."
    weight_decay: float = 0.05


def test_a_changed_trainconfig_default_is_a_new_result(tmp_path, monkeypatch):
    "The hash covers the resolved TrainConfig: a changed default gives another file and never reads the old result."
    spec = RunSpec("digits", DIGITS_BENCHMARK)
    assert "weight_decay" not in spec.config and spec.to_json()["train_config"]["weight_decay"] == TrainConfig().weight_decay
    old, old_path = save_result(spec, {"status": "finished"}, tmp_path), result_path(spec, tmp_path)
    monkeypatch.setattr(experiments, "TrainConfig", ChangedDefault)  # the same fields now resolve to another TrainConfig
    today = RunSpec("digits", DIGITS_BENCHMARK)
    assert today.to_json()["train_config"]["weight_decay"] == 0.05 and today.name == spec.name
    assert result_path(today, tmp_path) != old_path and result_path(spec, tmp_path) == result_path(today, tmp_path)
    assert load_result(today, tmp_path) is None and load_result(spec, tmp_path) is None  # the old result is not read
    assert json.loads(old_path.read_text()) == old  # nor touched
    with pytest.raises(ValueError, match=r"differs from today's TrainConfig in \['weight_decay'\]"): RunSpec.from_json(old["spec"])
    conflict = {"pretrain": old["spec"], "bands": [[100, 200]], "finetune_steps": 5, "per_bin": 4, "suite": "conflict"}
    with pytest.raises(ValueError, match="weight_decay"): ConflictSpec.from_json(conflict)
    monkeypatch.undo()
    assert RunSpec.from_json(old["spec"]).to_json() == old["spec"] and load_result(spec, tmp_path) == old


@pytest.mark.parametrize("edit, message", [
    (lambda tc: {**tc, "lr_schedule": "cosine"}, "in ['lr_schedule']"),
    (lambda tc: {k: v for k, v in tc.items() if k != "grad_clip"}, "in ['grad_clip']"),
    (lambda tc: {**tc, "new_field": 1}, "in ['new_field']"),
])
def test_from_json_refuses_a_record_whose_resolved_config_differs(edit, message):
    recorded = RunSpec("digits", DIGITS_BENCHMARK).to_json()
    with pytest.raises(ValueError) as error: RunSpec.from_json({**recorded, "train_config": edit(recorded["train_config"])})
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError, match="no train_config"): RunSpec.from_json({k: v for k, v in recorded.items() if k != "train_config"})


def test_the_hash_ignores_key_order_and_tuple_versus_list():
    assert spec_hash({"a": 1, "b": (1, 2)}) == spec_hash({"b": [1, 2], "a": 1}) != spec_hash({"a": 1, "b": [2, 1]})


def test_a_changed_spec_never_reads_an_old_result(tmp_path, counting):
    old = counting(1.0)
    first, = run_suite([old], tmp_path)
    changed = counting(1.0, lr=2e-3)
    assert load_result(changed, tmp_path) is None
    second, = run_suite([changed], tmp_path)
    assert counting.computed == [old.to_json(), changed.to_json()]  # computed anew, from the changed spec
    assert second["spec"] == changed.to_json() and load_result(old, tmp_path) == first  # the old result is kept
    assert len(list((tmp_path / "fake").glob("*.json"))) == 2


def test_a_record_is_the_spec_the_command_and_the_result(tmp_path, counting):
    record, = run_suite([counting(3.0)], tmp_path, command="papermill nbs/x.ipynb")
    assert record == {"spec": {"value": 3.0, "lr": 1e-3}, "name": "v3", "hash": spec_hash({"value": 3.0, "lr": 1e-3}),
                      "command": "papermill nbs/x.ipynb", "value": 6.0}
    assert json.loads(result_path(counting(3.0), tmp_path).read_text()) == record


def test_resume_skips_finished_results(tmp_path, counting):
    specs = [counting(v) for v in (1.0, 2.0, 3.0)]
    assert run_suite(specs, tmp_path, limit=2)[2] is None and len(counting.computed) == 2  # a first sitting of two
    results = run_suite(specs, tmp_path)
    assert [c["value"] for c in counting.computed] == [1.0, 2.0, 3.0]  # the second sitting computed only the third
    assert run_suite(specs, tmp_path) == results and len(counting.computed) == 3  # all stored: nothing computed


def test_a_file_recording_another_spec_is_neither_read_nor_overwritten(tmp_path, counting):
    spec = counting(1.0)
    path = result_path(spec, tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"spec": {"value": 9.0}, "value": 18.0}))  # edited by hand
    assert load_result(spec, tmp_path) is None
    with pytest.raises(ValueError, match="records another spec"): run_suite([spec], tmp_path)
    with pytest.raises(FileExistsError): save_result(spec, {"value": 2.0}, tmp_path)
    assert json.loads(path.read_text())["value"] == 18.0


@pytest.mark.parametrize("make, message", [
    (lambda: RunSpec("d", {**DIGITS_BENCHMARK, "weighting": "min-snr-x"}), "unknown loss weighting strategy"),
    (lambda: RunSpec("d", {**DIGITS_BENCHMARK, "seed": 3}), "config must not set ['seed']"),
    (lambda: RunSpec("d", {**DIGITS_BENCHMARK, "out_dir": "x"}), "config must not set ['out_dir']"),
    (lambda: RunSpec("d", DIGITS_BENCHMARK, eval_steps=(0, 500)), "eval_steps must lie in [1, steps=800]"),
    (lambda: ConflictSpec(RunSpec("c", DIGITS_BENCHMARK, eval_steps=()), bands=((300, 200),)), "0 ≤ low < high ≤ 1000"),
    (lambda: ConflictSpec(RunSpec("c", DIGITS_BENCHMARK, eval_steps=()), finetune_steps=0), "finetune_steps must be"),
    (lambda: run_suite([], workers=0), "workers must be"),
    (lambda: run_suite([CountingSpec(1.0)] * 2), "appears twice"),
])
def test_bad_specs_and_arguments_are_refused(make, message):
    with pytest.raises(ValueError) as error: make()
    assert message in str(error.value)


@pytest.mark.parametrize("values, fmt, expected", [
    ([1.0, 2.0, 4.5], "{:.1f}", "2.5 (1.0–4.5)"), ([0.912, 0.95], "{:.2f}", "0.93 (0.91–0.95)"), ([7], "{:.0f}", "7 (7–7)"),
])
def test_spread_is_mean_and_range(values, fmt, expected):
    assert spread(values, fmt) == expected
    assert spread(values) == spread(values, "{:.1f}")


def migrate_tool():
    "tools/migrate_results.py, imported as a module."
    import importlib.util
    loader = importlib.util.spec_from_file_location("migrate_results", ROOT / "tools" / "migrate_results.py")
    migrate = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(migrate)
    return migrate


def test_migration_renames_legacy_records_without_rerunning(tmp_path):
    "tools/migrate_results.py moves each legacy record (named by RunSpec.name) to its content-addressed name, once."
    migrate = migrate_tool()
    run = RunSpec("digits", {**DIGITS_BENCHMARK, "target": "eps"}, seed=1)
    conflict = converged_conflict_specs((2,))[0]
    legacy = {
        "digits/vit_tiny_eps_min-snr-5_s1.json": {"spec": migrate.stated(run), "name": run.name, "status": "finished", "evals": [1]},
        "conflict/vit_tiny_x0_min-snr-5_s2.json": {"spec": migrate.stated(conflict.pretrain), "name": conflict.name,
                                                   "settings": {"bands": [[100, 200], [200, 300], [300, 400]],
                                                                "finetune_steps": 200, "per_bin": 256}, "before": [2.0]},
    }
    for name, record in legacy.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(json.dumps(record))
    assert migrate.main(tmp_path, dry_run=False) == 0
    assert not any((tmp_path / name).exists() for name in legacy)
    assert load_result(run, tmp_path)["evals"] == [1] and load_result(conflict, tmp_path)["before"] == [2.0]
    assert load_result(run, tmp_path)["migrated_from"] == "digits/vit_tiny_eps_min-snr-5_s1.json"
    assert len(list(tmp_path.rglob("*.json"))) == 2
    assert migrate.main(tmp_path, dry_run=False) == 0 and len(list(tmp_path.rglob("*.json"))) == 2  # a second run: nothing to do


def test_migration_rekeys_store_records_without_the_resolved_config(tmp_path):
    "A store record hashed before the spec held its resolved TrainConfig moves to its new name, its result unchanged."
    migrate = migrate_tool()
    run, conflict = RunSpec("digits", {**DIGITS_BENCHMARK, "target": "v"}, seed=4), converged_conflict_specs((5,))[0]
    old_specs = [(run, migrate.stated(run)), (conflict, {**conflict.to_json(), "pretrain": migrate.stated(conflict.pretrain)})]
    old_paths = []
    for spec, old_spec in old_specs:
        path = tmp_path / spec.suite / f"{spec.name}_{spec_hash(old_spec)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"spec": old_spec, "name": spec.name, "hash": spec_hash(old_spec), "command": "c",
                                    "status": "finished", "migrated_from": "x.json", "evals": [3]}))
        assert load_result(spec, tmp_path) is None  # the old name is not the spec's today
        old_paths.append(path)
    assert migrate.main(tmp_path, dry_run=True) == 0 and all(p.exists() for p in old_paths)  # a dry run writes nothing
    assert migrate.main(tmp_path, dry_run=False) == 0
    assert not any(p.exists() for p in old_paths) and len(list(tmp_path.rglob("*.json"))) == 2
    for spec, _ in old_specs:
        record = load_result(spec, tmp_path)
        assert {k: record[k] for k in ("command", "status", "migrated_from", "evals")} == {
            "command": "c", "status": "finished", "migrated_from": "x.json", "evals": [3]}
    assert migrate.main(tmp_path, dry_run=False) == 0 and len(list(tmp_path.rglob("*.json"))) == 2  # nothing left to do


def test_migration_rekeys_records_made_before_fields_were_added_at_their_defaults(tmp_path):
    "A record lacking fields TrainConfig gained since (at defaults that keep the old behaviour) is re-keyed; any other difference is not."
    migrate = migrate_tool()
    run = RunSpec("digits", {**DIGITS_BENCHMARK, "target": "v"}, seed=4)
    older = {k: v for k, v in run.resolved_config().items() if k != "uncertainty"}  # as if made before `uncertainty` existed
    assert migrate.added_defaults(older, run.resolved_config()) == ["uncertainty"]
    assert migrate.added_defaults({**older, "lr": 1.0}, run.resolved_config()) is None  # a real difference: never re-keyed
    assert migrate.added_defaults(older, {**run.resolved_config(), "uncertainty": True}) is None  # added, but not at its default
    old_spec = {**migrate.stated(run), "train_config": older}
    path = tmp_path / "digits" / f"{run.name}_{spec_hash(old_spec)}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"spec": old_spec, "name": run.name, "hash": spec_hash(old_spec), "command": "c", "evals": [3]}))
    assert load_result(run, tmp_path) is None
    assert migrate.main(tmp_path, dry_run=False) == 0 and not path.exists()
    record = load_result(run, tmp_path)
    assert record["evals"] == [3] and record["added_fields"] == ["uncertainty"]
    assert migrate.main(tmp_path, dry_run=False) == 0 and len(list(tmp_path.rglob("*.json"))) == 1  # nothing left to do


@pytest.mark.slow  # papermill
@pytest.mark.parametrize("name, parameters", [
    ("exp_convergence", {"max_new_runs": 0}), ("exp_ablations", {"max_new_runs": 0}),
    ("exp_beyond", {"max_new_runs": 0}), ("exp_conflict", {"run_missing": False}),
])
def test_experiment_notebook_reruns_from_stored_results(tmp_path, name, parameters):
    "The notebook trains nothing (max_new_runs=0), reads the stored results, draws its figures and writes its summary."
    results = tmp_path / "results"
    shutil.copytree(RESULTS, results)
    shutil.rmtree(results / "summary", ignore_errors=True)
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(str(ROOT / "nbs" / f"{name}.ipynb"), str(out), cwd=str(ROOT), kernel_name="python3",
                               progress_bar=False, parameters={**parameters, "results_dir": str(results),
                                                               "runs_dir": str(tmp_path / "runs")})
    nb = json.loads(out.read_text())
    assert any(o.get("output_type") == "display_data" for c in nb["cells"] for o in c.get("outputs", []))  # a figure
    assert not (tmp_path / "runs").exists()  # nothing was trained
    assert list((results / "summary").glob("*.json"))


def _curve(*points):
    return [{"step": s, "fd": f} for s, f in points]


FAST = _curve((100, 40.0), (200, 10.0), (400, 5.0))  # reaches 10 at step 200
SLOW = _curve((100, 60.0), (200, 30.0), (400, 10.0))  # reaches 10 at step 400
NEVER = _curve((100, 60.0), (200, 50.0), (400, 40.0))  # never reaches 10


@pytest.mark.parametrize("candidate, baseline, kind, ratio", [
    (FAST, SLOW, "=", 2.0),  # both reach it: the exact ratio
    (SLOW, FAST, "=", 0.5),
    (FAST, NEVER, "≥", 2.0),  # the baseline never does: at least 400/200
    (NEVER, FAST, "≤", 0.5),  # the candidate never does: at most 200/400
    (NEVER, NEVER, None, None),  # neither: no ratio
])
def test_paired_speedups_mark_bounds(candidate, baseline, kind, ratio):
    (pair,) = experiments.paired_speedups({0: candidate}, {0: baseline}, 10.0)
    assert pair["kind"] == kind
    assert pair["ratio"] == (pytest.approx(ratio) if ratio is not None else None)


def test_speedup_summary_is_the_geometric_mean_and_never_averages_in_a_seed_without_ratio():
    summary = experiments.speedup_summary({0: FAST, 1: FAST, 2: NEVER}, {0: SLOW, 1: _curve((100, 40.0), (800, 10.0)), 2: NEVER}, 10.0)
    assert summary["kind"] == "=" and summary["neither_reached"] == 1 and summary["seeds"] == 3
    assert summary["ratio"] == pytest.approx((2.0 * 4.0) ** 0.5)
    low, high = summary["interval"]
    assert 2.0 <= low <= summary["ratio"] <= high <= 4.0
    assert experiments.format_speedup(summary).startswith("2.83× [")
    assert "1 of 3 seeds: neither" in experiments.format_speedup(summary)


@pytest.mark.parametrize("kinds, expected", [(("≥", "="), "≥"), (("≤", "="), "≤"), (("≥", "≤"), "mixed")])
def test_speedup_summary_kind_follows_its_bounds(kinds, expected):
    pick = {"=": (FAST, SLOW), "≥": (FAST, NEVER), "≤": (NEVER, FAST)}
    candidate = {i: pick[k][0] for i, k in enumerate(kinds)}
    baseline = {i: pick[k][1] for i, k in enumerate(kinds)}
    assert experiments.speedup_summary(candidate, baseline, 10.0)["kind"] == expected


def test_bootstrap_interval_covers_the_mean_and_is_reproducible():
    values = [1.0, 2.0, 2.5, 3.0, 6.0]
    low, high = experiments.bootstrap_interval(values)
    assert low < sum(values) / 5 < high and (low, high) == experiments.bootstrap_interval(values)
    assert experiments.bootstrap_interval(values, level=0.5)[1] < high  # a lower level is narrower


@pytest.mark.parametrize("values, level, message", [
    ([1.0], 0.95, "at least 2 seeds"), ([1.0, 2.0], 1.0, "level"), ([[1.0, 2.0]], 0.95, "one value per seed")])
def test_bootstrap_interval_refuses_bad_input(values, level, message):
    with pytest.raises(ValueError, match=message): experiments.bootstrap_interval(values, level=level)


@pytest.mark.parametrize("stopped", [True, False])
def test_a_run_stopped_by_a_signal_stores_nothing(tmp_path, monkeypatch, stopped):
    "SIGTERM / Ctrl-C end `train` early with a status; such a run must not be stored as finished (the suite would skip it)."
    spec = RunSpec("digits", {**DIGITS_BENCHMARK, "steps": 4, "log_every": 2, "ckpt_every": 2}, seed=0, eval_steps=(4,))
    summary = {"status": "stopped by SIGTERM", "stopped_by": "SIGTERM", "step": 2} if stopped else {"status": "finished", "step": 4}
    monkeypatch.setattr(experiments, "train", lambda config, on_step=None: summary)
    monkeypatch.setattr(experiments, "evaluate", lambda *a, **k: {"fd": 1.0})
    if stopped:
        with pytest.raises(experiments.RunStopped, match="stopped by SIGTERM at step 2 of 4; nothing was stored"):
            experiments.run_spec(spec, tmp_path / "results", tmp_path / "runs")
        assert not result_path(spec, tmp_path / "results").exists()
    else:
        assert experiments.run_spec(spec, tmp_path / "results", tmp_path / "runs")["status"] == "finished"
        assert result_path(spec, tmp_path / "results").exists()


class StoppableSpec:
    "A spec whose run waits until it is stopped by SIGTERM (as the trainer is), or ends at once if `quick`."
    suite = "stoppable"

    def __init__(self, value, quick=False): self.value, self.quick = value, quick
    @property
    def name(self) -> str: return f"v{self.value}"
    def to_json(self) -> dict: return {"value": self.value, "quick": self.quick}

    def run(self, out_dir: Path) -> dict:
        import signal
        import time
        stopped = []
        previous = signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))  # as the trainer does while it runs
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "started").write_text("")
        try:
            deadline = time.monotonic() + 60  # without the stop reaching it, the run ends (and the test fails, not hangs)
            while not self.quick and not stopped and time.monotonic() < deadline: time.sleep(0.05)
        finally:
            signal.signal(signal.SIGTERM, previous)
        if stopped: raise experiments.RunStopped(f"{self.name}: stopped")
        return {"value": self.value}


@pytest.mark.slow  # worker processes
def test_a_stopped_suite_stops_its_workers_and_starts_no_queued_run(tmp_path):
    "SIGTERM to the suite reaches the running runs (they stop), the queued ones never start, and the stop propagates."
    import os
    import signal
    import threading
    specs = [StoppableSpec(0, quick=True)] + [StoppableSpec(v) for v in range(1, 6)]
    runs = tmp_path / "runs" / "stoppable"

    def stop_when_two_run():
        for _ in range(1200):
            if len(list(runs.glob("v[1-5]*/started"))) >= 2: break
            threading.Event().wait(0.05)
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill <suite pid>` does

    threading.Thread(target=stop_when_two_run, daemon=True).start()
    with pytest.raises(experiments.RunStopped):
        run_suite(specs, tmp_path / "results", tmp_path / "runs", workers=2)
    started = sorted(p.parent.name.split("_")[0] for p in runs.glob("*/started"))
    assert started[0] == "v0" and len(started) == 3, started  # v0 and the two stopped: no queued run started
    assert [p.name.split("_")[0] for p in (tmp_path / "results" / "stoppable").glob("*.json")] == ["v0"]  # nothing else stored
