"""`minsnr-sample`: the arguments of `sample_run` parsed by type, help, one-line errors with exit code 2."""
import pytest
from conftest import run_cli

from minsnr.cli import main, params_of, sample_main
from minsnr.sampler import sample_run
from minsnr.trainer import TrainConfig, train


run = run_cli


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    "A finished two-step run of a tiny ViT on the digits."
    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(dataset="digits", model="vit_tiny", model_kwargs={"depth": 1, "embed_dim": 32, "num_heads": 2},
                      global_batch=8, steps=2, ckpt_every=2, out_dir=str(out), progress=False))
    return out


BAD = {  # argv → the exact error line (after "minsnr-sample: error: ")
    "required": ([], "missing required field(s) run_dir, out_dir: give run_dir=… out_dir=…"),
    "int": (["num_images=abc"], "num_images=abc: expected int or null"),
    "float": (["cfg_scale=high"], "cfg_scale=high: expected a number (e.g. 0.001 or 1e-3)"),
    "tuple": (["cfg_interval=0.5"], "cfg_interval=0.5: expected tuple[float, float] or null"),
    "repeated": (["num_steps=18", "num_steps=50"], "num_steps given twice (num_steps=18 and num_steps=50): give each field once"),
    "unknown": (["num_image=5"], "unknown field 'num_image' (did you mean num_images?); valid fields: "
                + ", ".join(p.name for p in params_of(sample_run))),
    "empty": (["out_dir="], "out_dir= has no value: give out_dir=<value> (str), or leave it out for the default"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_with_exit_code_2(case, capsys):
    argv, message = BAD[case]
    code, out, err = run(sample_main, argv, capsys)
    assert (code, err, out) == (2, f"minsnr-sample: error: {message}\n", "")


@pytest.mark.parametrize("extra, fragments", [  # sample_run's own checks, before anything is drawn
    ({"run_dir": "/no/such/run"}, ["/no/such/run"]),
    ({"num_images": "-5"}, ["num_images", "-5"]),
    ({"weights": "raw"}, ["'raw'", "'ema'"]),
    ({"seeds": "3-1"}, ["3-1"]),
    ({"out_dir": "FILE"}, ["a-file.txt"]),
])
def test_sample_run_checks_are_one_line_with_exit_code_2(run_dir, tmp_path, capsys, extra, fragments):
    (tmp_path / "a-file.txt").write_text("not a folder")
    args = {"run_dir": str(run_dir), "out_dir": str(tmp_path / "png"), "num_images": "2", "num_steps": "2"} | extra
    if args["out_dir"] == "FILE": args["out_dir"] = str(tmp_path / "a-file.txt")
    if "seeds" in args: del args["num_images"]
    code, _, err = run(sample_main, [f"{k}={v}" for k, v in args.items()], capsys)
    assert code == 2 and err.startswith("minsnr-sample: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and all(f in err for f in fragments), err
    assert not list((tmp_path / "png").glob("*.png")) if (tmp_path / "png").is_dir() else True


def test_help_lists_every_argument(capsys):
    code, out, _ = run(sample_main, ["--help"], capsys)
    assert code == 0
    for p in params_of(sample_run):
        assert f"\n  {p.name}=" in out and p.doc in out, p.name


def test_samples_by_seed_range_and_resumes(run_dir, tmp_path, capsys):
    argv = [f"run_dir={run_dir}", f"out_dir={tmp_path / 'png'}", "seeds=0-2,7", "num_steps=2"]
    code, out, err = run(main, ["sample", *argv], capsys)  # python -m minsnr.cli sample …
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "png").glob("*.png")) == ["000000.png", "000001.png", "000002.png", "000007.png"]
    assert "wrote 4 images" in out
    code, out, err = run(sample_main, argv, capsys)
    assert code == 0 and "wrote 0 images" in out, err


def test_unknown_command(capsys):
    code, _, err = run(main, ["smaple"], capsys)
    assert code == 2 and err == ("python -m minsnr.cli: error: unknown command 'smaple' (did you mean sample?); "
                                 "commands: train, sample, fid, bench, bench-suite\n")


@pytest.mark.slow  # a real process and a real SIGTERM
def test_sigterm_exits_143_keeps_the_written_images_and_a_rerun_finishes(run_dir, tmp_path):
    import os, signal, subprocess, sys, time
    out = tmp_path / "png"
    cmd = [sys.executable, "-m", "minsnr.cli", "sample", f"run_dir={run_dir}", f"out_dir={out}", "seeds=0-99",
           "num_steps=10", "batch_size=2"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.png"))) < 4: time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "minsnr-sample: stopped by SIGTERM" in stderr
    kept = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert 4 <= len(kept) < 100
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert f"wrote {100 - len(kept)} images" in done.stdout
    assert len(list(out.glob("*.png"))) == 100
    assert all((out / name).read_bytes() == data for name, data in kept.items())
