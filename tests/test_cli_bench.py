"""`minsnr-bench`: the arguments of `benchmark` parsed by type, help, one-line errors with exit code 2."""
import json

import pytest
from conftest import run_cli

from minsnr.cli import bench_main, params_of
from minsnr.cli import benchmark


def run(argv, capsys): return run_cli(bench_main, argv, capsys)


BAD = {  # argv → the exact error line (after "minsnr-bench: error: ")
    "unknown": (["batch=4"], "unknown field 'batch' (did you mean batch_size?); valid fields: "
                + ", ".join(p.name for p in params_of(benchmark))),
    "int": (["steps=ten"], "steps=ten: expected an integer"),
    "bool": (["compile=yes"], "compile=yes: expected true or false"),
    "repeated": (["steps=1", "steps=2"], "steps given twice (steps=1 and steps=2): give each field once"),
    "no equals": (["vit_b"], "expected field=value, got 'vit_b'; valid fields: " + ", ".join(p.name for p in params_of(benchmark))),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_with_exit_code_2(case, capsys):
    argv, message = BAD[case]
    code, out, err = run(argv, capsys)
    assert (code, err, out) == (2, f"minsnr-bench: error: {message}\n", "")


def test_benchmark_checks_are_one_line_with_exit_code_2(capsys):
    code, _, err = run(["precision=fp8"], capsys)
    assert code == 2 and err.startswith("minsnr-bench: error: ") and "'fp8'" in err and "'bf16'" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_help_lists_every_argument(capsys):
    code, out, _ = run(["-h"], capsys)
    assert code == 0
    for p in params_of(benchmark): assert f"\n  {p.name}=" in out and p.doc in out, p.name


def test_bench_prints_the_measurement_as_json(capsys):
    code, out, err = run(["model=vit_tiny", "batch_size=2", "steps=1", "warmup=0", "precision=fp32", "device=cpu"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["setup"]["model"] == "vit_tiny" and result["setup"]["batch_size"] == 2 and result["speedup"] > 0


def test_bench_suite_refuses_an_unknown_scale_in_one_line(capsys):
    from minsnr.cli import bench_suite_main
    code, out, err = run_cli(bench_suite_main, ["scale=huge"], capsys)
    assert code == 2 and err == "minsnr bench-suite: error: scale must be one of 'gpu', 'smoke', got 'huge'\n", err


def test_bench_smoke_writes_every_field_of_the_gpu_suite(tmp_path):
    "`make bench-smoke`'s run: the JSON a GPU run writes, with the checks that hold on any device."
    import subprocess
    import sys
    out = tmp_path / "bench"
    subprocess.run([sys.executable, "-m", "minsnr.cli", "bench-suite", "scale=smoke", f"out_dir={out}", "device=cpu"],
                   check=True, capture_output=True, text=True)
    result = json.loads((out / "bench.json").read_text())
    assert set(result) == {"scale", "device", "torch", "command", "training", "train_smoke", "trainer_overhead", "sampling",
                           "inception", "seconds"}
    for part in result["training"].values():
        assert len(part["configurations"]) == 4
        for row in part["configurations"].values():
            assert {"images_per_s", "mfu", "over_official", "peak_memory_gib", "precision", "compiled"} <= set(row)
    assert result["train_smoke"]["loss_falls"] is not None and result["train_smoke"]["resume_exact"]
    assert result["sampling"]["nfe"] == 2 * result["sampling"]["heun_steps"] - 1
    overhead = result["trainer_overhead"]
    assert overhead["trainer_images_per_s"] > 0 and overhead["bare_images_per_s"] > 0 and overhead["host_syncs_per_step"] is None
    assert "The trainer against a bare loop" in (out / "bench.md").read_text()
    assert result["inception"]["images_per_s"] > 0 and (out / "bench.md").read_text().startswith("| model |")


def test_the_gpu_scale_refuses_a_cpu_in_one_line(capsys):
    from minsnr.cli import bench_suite_main
    code, out, err = run_cli(bench_suite_main, ["scale=gpu", "device=cpu"], capsys)
    assert code == 2 and err.count("\n") == 1 and "device='cpu'" in err and "scale='smoke'" in err, err
