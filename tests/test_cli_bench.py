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
