"""The stored results of the Pareto-weights experiment (nbs/exp_pareto.ipynb) are sound and the notebook re-runs from them."""
import json
import shutil
from pathlib import Path

import jupytext
import numpy as np
import papermill
import pytest

from minsnr.experiments import spec_hash
from minsnr.trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "book" / "results" / "pareto"


def notebook_parameters() -> dict:
    "The defaults of the notebook's `parameters` cell."
    nb = jupytext.read(ROOT / "nbs" / "exp_pareto.py")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    values = {}
    exec(cell.source, {}, values)
    return values


def stored() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("seed*.json"))]


def test_each_seed_has_one_file_named_by_the_hash_of_its_configuration():
    paths = sorted(RESULTS.glob("*.json"))
    records = [json.loads(p.read_text()) for p in paths]
    assert [p.stem for p in paths] == [f"seed{r['seed']}_{spec_hash(r['spec'])}" for r in records]
    assert len({r["seed"] for r in records}) == len(records)


def test_every_seed_is_stored_with_the_notebooks_configuration():
    params, results = notebook_parameters(), stored()
    assert sorted(r["seed"] for r in results) == sorted(params["seeds"])
    for r in results:
        config = r["spec"]
        assert r["status"] == "finished" and r["command"].startswith("papermill nbs/exp_pareto.ipynb")
        for key in ("checkpoints", "num_bins", "reference_samples", "samples_per_bin", "repeats", "lam_rel", "control_weightings"):
            assert config[key] == params[key], key
        assert config["train"]["steps"] == params["steps"] and config["train"]["seed"] == r["seed"]
        assert [c["step"] for c in r["metrics"]["checkpoints"]] == params["checkpoints"]
        for weighting in params["control_weightings"]:
            assert [c["step"] for c in r["metrics"]["control"][weighting]] == params["checkpoints"]
        assert sorted(map(int, r["metrics"]["figure3"]["by_n"])) == sorted(params["samples_per_bin"])


def test_each_seeds_spec_states_its_full_trainconfig():
    "The hashed spec holds every TrainConfig field but out_dir, so a changed TrainConfig default is a new result."
    fields = set(TrainConfig.__dataclass_fields__) - {"out_dir"}
    for r in stored():
        assert set(r["spec"]["train"]) == fields, sorted(fields ^ set(r["spec"]["train"]))
        assert TrainConfig(**r["spec"]["train"], out_dir="x").betas == tuple(r["spec"]["train"]["betas"])  # valid today


@pytest.mark.parametrize("result", stored(), ids=lambda r: f"seed{r['seed']}")
def test_stored_objectives_are_consistent_with_the_stored_gradients(result):
    "Eq. 11 recomputed from the stored Gram matrix (norms and cosines) gives the stored objectives, and the exact minimiser wins."
    records = result["metrics"]["checkpoints"] + sum(result["metrics"]["control"].values(), [])
    for record in records:
        norms = np.sqrt(record["grad_norm_sq"])
        gram = np.array(record["cosine"]) * norms[:, None] * norms[None, :]
        K, lam = len(norms), record["lam"]
        for name, w in record["weights"].items():
            w = np.array(w)
            assert w.shape == (K,) and (w >= 0).all() and abs(w.sum() - 1) < 1e-9, name
            assert np.isclose(w @ (gram + lam * np.eye(K)) @ w, record["objective"][name], rtol=1e-6), name
            assert np.isclose(w @ gram @ w, record["objective_lam0"][name], rtol=1e-6, atol=1e-12), name
            assert record["objective"]["exact"] <= record["objective"][name] * (1 + 1e-9), name
            assert record["objective_lam0"]["min-norm (λ=0)"] <= record["objective_lam0"][name] * (1 + 1e-9), name
        assert record["objective"]["UGD"] <= record["objective"]["exact"] * 1.01  # UGD converged to within 1 %
    for n, runs in result["metrics"]["figure3"]["by_n"].items():
        assert len(runs["UGD"]) == result["spec"]["repeats"]
        assert np.allclose(np.array(runs["UGD"]).sum(1), 1)


@pytest.mark.slow  # papermill
def test_notebook_reruns_from_the_stored_results(tmp_path):
    "In quick mode, with every seed stored, the notebook trains and computes nothing, draws its figures and writes its summary."
    results = tmp_path / "results" / "pareto"
    shutil.copytree(RESULTS, results)
    out = tmp_path / "exp_pareto.ipynb"
    papermill.execute_notebook(str(ROOT / "nbs" / "exp_pareto.ipynb"), str(out), cwd=str(ROOT), kernel_name="python3",
                               progress_bar=False, parameters={"quick": True, "results_dir": str(results.parent),
                                                               "runs_dir": str(tmp_path / "runs")})
    nb = json.loads(out.read_text())
    assert sum(o.get("output_type") == "display_data" for c in nb["cells"] for o in c.get("outputs", [])) >= 3
    assert not (tmp_path / "runs").exists()
    summary = json.loads((tmp_path / "results" / "summary" / "pareto.json").read_text())
    assert summary["seeds"] == sorted(summary["seeds"]) and len(summary["seeds"]) >= 3
