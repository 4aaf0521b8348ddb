"""The experiment notebooks of the Reproduction part re-run from the stored result files, and the result files are sound."""
import json
import shutil
from pathlib import Path

import papermill
import pytest

from minsnr.experiments import (beyond_specs, conflict_specs, convergence_specs, gamma_specs, load_result, photo_specs,
                                result_path, unet_convergence_specs)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "book" / "results"
ALL_SPECS = convergence_specs() + gamma_specs() + beyond_specs() + unet_convergence_specs() + photo_specs()


def test_every_stored_result_matches_its_spec_and_is_complete():
    "A result file belongs to the spec of the current suites (else it is stale) and has every evaluation it promised."
    stored = {p.resolve() for suite in ("digits", "photo") for p in (RESULTS / suite).glob("*.json")}
    by_path = {result_path(s, RESULTS).resolve(): s for s in ALL_SPECS}
    assert stored, "no stored results: run the experiment notebooks"
    assert stored <= set(by_path), f"result files of no current spec: {sorted(p.name for p in stored - set(by_path))}"
    for path in stored:
        spec, result = by_path[path], json.loads(path.read_text())
        assert load_result(spec, RESULTS) is not None, f"{path.name}: its spec differs from the current suite's"
        if result["status"] == "finished":
            assert [e["step"] for e in result["evals"]] == list(spec.eval_steps), path.name
            assert result["metrics"][-1]["step"] == spec.train_config("x").steps, path.name


def test_at_least_three_seeds_per_setting():
    "Every setting of the book's comparisons has ≥ 3 seeds stored (the figures show the spread over them)."
    settings = {}
    for spec in ALL_SPECS:
        seeds = settings.setdefault(spec.suite + "/" + spec.name.rsplit("_s", 1)[0], set())
        if load_result(spec, RESULTS) is not None: seeds.add(spec.seed)
    few = {k: sorted(v) for k, v in settings.items() if len(v) < 3}
    assert settings and not few, f"settings with fewer than 3 seeds: {few}"
    conflict = [s for s in conflict_specs() if (RESULTS / s.suite / f"{s.name}.json").is_file()]
    assert len(conflict) >= 3


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
