"""`minsnr-train`: values parsed by type, help, one-line errors with exit code 2, exit codes on interruption, grids."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import run_cli
from PIL import Image

import minsnr.cli as cli
from minsnr.cli import train_main
from minsnr.trainer import TrainConfig, list_checkpoints

TINY = ["dataset=digits", "model=vit_tiny", "model_kwargs={depth: 1, embed_dim: 32, num_heads: 2}", "global_batch=8",
        "progress=false", "log_every=1"]


def run(argv, capsys): return run_cli(train_main, argv, capsys)


BAD = {  # argv → the exact error line (after "minsnr-train: error: ")
    "float": (["lr=fast"], "lr=fast: expected a number (e.g. 0.001 or 1e-3)"),
    "int": (["seed=abc"], "seed=abc: expected an integer"),
    "int from float": (["steps=5.5"], "steps=5.5: expected an integer"),
    "bool": (["progress=maybe"], "progress=maybe: expected true or false"),
    "repeated": (["steps=5", "steps=2"], "steps given twice (steps=5 and steps=2): give each field once"),
    "literal": (["precision=fp8"], "precision=fp8: expected one of 'auto', 'fp32', 'bf16', 'fp16'"),
    "optional float": (["gamma=abc"], "gamma=abc: expected float or null"),
    "tuple length": (["betas=0.9"], "betas=0.9: expected 2 values, like 1,1 (tuple[float, float])"),
    "tuple item": (["betas=0.9,x"], "betas[1]=x: expected a number (e.g. 0.001 or 1e-3)"),
    "dict": (["model_kwargs=[1, 2]"], "model_kwargs=[1, 2]: expected a mapping like {depth: 2, embed_dim: 64}"),
    "empty": (["out_dir="], "out_dir= has no value: give out_dir=<value> (str), or leave it out for the default"),
    "no equals": (["steps"], "expected field=value, got 'steps'; valid fields: " + ", ".join(
        [f.name for f in cli.params_of(TrainConfig)] + [f.name for f in cli.params_of(cli.GridOptions)])),
    "config missing": (["--config", "/no/such.yaml"], "--config /no/such.yaml: no such file"),
    "config without file": (["steps=3", "--config"], "--config needs a file: --config FILE.yaml"),
    "grid option": (["sample_every=-1"], "sample_every must be an integer ≥ 0, got -1"),
    "grid literal": (["grid_weights=raw"], "grid_weights=raw: expected one of 'ema', 'model'"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_with_exit_code_2(case, capsys):
    argv, message = BAD[case]
    code, out, err = run(argv, capsys)
    assert (code, err) == (2, f"minsnr-train: error: {message}\n")
    assert out == ""


def test_unknown_field_names_the_close_ones_and_all(capsys):
    code, _, err = run(["stepz=5"], capsys)
    assert code == 2
    assert err.startswith("minsnr-train: error: unknown field 'stepz' (did you mean steps?); valid fields: dataset, data_dir,")
    assert err.rstrip().endswith("grid_weights, vae_dir") and err.count("\n") == 1


@pytest.mark.parametrize("argv, fragments", [  # TrainConfig's own checks, reported the same way
    (["steps=0"], ["steps", "0"]),
    (["weighting=minsnr"], ["'minsnr'", "'min-snr'"]),
    (["class_drop_prob=1.5"], ["class_drop_prob", "1.5"]),
])
def test_trainconfig_checks_are_one_line_with_exit_code_2(argv, fragments, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and err.startswith("minsnr-train: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and all(f in err for f in fragments), err


@pytest.mark.parametrize("text, message", [
    ("stepz: 7\n", "unknown field 'stepz' in --config {path} (did you mean steps?)"),
    ("steps: 7.5\n", "steps=7.5: expected an integer"),
    ("steps: true\n", "steps=True: expected an integer"),
    ("compile: maybe\n", "compile=maybe: expected true or false"),
    ("out_dir: null\n", "--config {path} leaves out_dir to you: give out_dir=…"),
    ("- 1\n- 2\n", "--config {path}: expected a mapping of field: value, got list"),
])
def test_bad_config_file(tmp_path, capsys, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    code, _, err = run(["--config", str(path)], capsys)
    assert code == 2 and err.startswith("minsnr-train: error: " + message.format(path=path)), err


def test_config_twice_is_an_error(tmp_path, capsys):
    (tmp_path / "a.yaml").write_text("steps: 3\n")
    code, _, err = run(["--config", str(tmp_path / "a.yaml"), f"--config={tmp_path / 'a.yaml'}"], capsys)
    assert code == 2 and "--config given twice" in err


def test_values_are_parsed_by_type_from_the_line_and_the_file(tmp_path):
    params = cli.params_of(TrainConfig)
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nsteps: 7\nbetas: [0.9, 0.95]\ngamma: null\nmodel_kwargs: {depth: 2}\n")
    values = cli.parse_args(["steps=3", "--config", str(tmp_path / "c.yaml"), "--ema_decay=0.99", "out_dir=007"], params)
    config = TrainConfig(**values)
    assert (config.lr, config.steps, config.betas, config.gamma) == (0.001, 3, (0.9, 0.95), None)
    assert (config.ema_decay, config.out_dir, config.model_kwargs) == (0.99, "007", {"depth": 2})
    assert type(config.lr) is float and type(config.steps) is int


def test_a_shipped_recipe_with_overrides_from_the_line(tmp_path):
    "`--config configs/….yaml` finds the repository's recipe from any working directory; the line overrides the file."
    values = cli.parse_args(["--config", "configs/in256_vit_xl2.yaml", f"data_dir={tmp_path}", "out_dir=runs/xl", "steps=5"],
                            cli.params_of(TrainConfig))
    config = TrainConfig(**values)
    assert (config.model, config.steps, config.out_dir, config.data_dir) == ("vit_xl", 5, "runs/xl", str(tmp_path))


def test_a_recipe_without_its_user_paths_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository root: the recipe is found all the same
    code, _, err = run(["--config", "configs/in64_vit_l4.yaml", f"data_dir={tmp_path}"], capsys)
    assert (code, err) == (2, "minsnr-train: error: --config configs/in64_vit_l4.yaml leaves out_dir to you: give out_dir=…\n")
    code, _, err = run(["--config", "configs/in64_vit_l4.yaml", "out_dir=runs/x"], capsys)
    assert code == 2 and "data_dir" in err and err.count("\n") == 1, err


def test_help_lists_every_field_with_comment_type_default_and_choices(capsys):
    for flag in ("--help", "-h"):
        code, out, err = run(["steps=3", flag], capsys)
        assert code == 0 and err == ""
        for f in cli.params_of(TrainConfig) + cli.params_of(cli.GridOptions):
            assert f"\n  {f.name}=" in out, f.name
            if f.doc: assert f.doc in out, f.name
        assert "  lr=0.0001  (float)\n      AdamW learning rate" in out
        assert "  precision=auto  (choice)\n      choices: auto, fp32, bf16, fp16" in out


def test_train_writes_grids_and_never_overwrites_one(tmp_path, capsys):
    out = tmp_path / "run"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "grid-00000004.png").write_bytes(b"a grid from before")
    code, stdout, err = run([*TINY, "steps=4", "ckpt_every=2", f"out_dir={out}", "sample_every=2", "grid_seeds=0-3",
                             "grid_steps=2", "lr=1e-3"], capsys)
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["step"] == 4
    assert (out / "samples" / "grid-00000004.png").read_bytes() == b"a grid from before"
    names = sorted(p.name for p in (out / "samples").iterdir())
    assert names == ["grid-00000002.png", "grid-00000004-1.png", "grid-00000004.png"]
    assert Image.open(out / "samples" / "grid-00000002.png").size == (16, 16)  # 2 × 2 digits of 8 × 8


def test_a_signal_exits_128_plus_its_number_after_the_checkpoint(tmp_path, capsys, monkeypatch):
    def hook(config, options):
        def on_step(step, model, ema):
            if step == 2: os.kill(os.getpid(), signal.SIGTERM)  # the trainer's handler turns it into a stop
        return on_step
    monkeypatch.setattr(cli, "grid_writer", hook)
    code, stdout, err = run([*TINY, "steps=50", "ckpt_every=100", f"out_dir={tmp_path / 'sig'}"], capsys)
    assert code == 128 + signal.SIGTERM == 143, err
    assert "minsnr-train: stopped by SIGTERM" in err
    assert [p.name for p in list_checkpoints(tmp_path / "sig")] == ["ckpt-00000002.pt"]


@pytest.mark.slow  # a real process and a real Ctrl-C
def test_ctrl_c_exits_130_and_the_run_resumes(tmp_path):
    out = tmp_path / "sigint"
    cmd = [sys.executable, "-m", "minsnr.cli", "train", *TINY, "steps=100000", "ckpt_every=100000", f"out_dir={out}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"OMP_NUM_THREADS": "1"})
    metrics, deadline = out / "metrics.jsonl", time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3): time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    stopped = json.loads(stdout.strip().splitlines()[-1])["step"]
    assert [p.name for p in list_checkpoints(out)] == [f"ckpt-{stopped:08d}.pt"]
    done = subprocess.run([*cmd[:-3], f"steps={stopped + 2}", "ckpt_every=100000", f"out_dir={out}"],
                          capture_output=True, text=True, timeout=120, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["step"] == stopped + 2


def test_a_locked_out_dir_is_one_line_with_exit_code_1(tmp_path, capsys):
    import socket
    out = tmp_path / "locked"
    out.mkdir()
    (out / "train.lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))  # a live process
    code, stdout, err = run([*TINY, "steps=2", f"out_dir={out}"], capsys)
    assert code == 1 and err.startswith(f"minsnr-train: error: out_dir {out} is in use by process {os.getppid()}"), err
    assert err.count("\n") == 1 and "Traceback" not in err and not list_checkpoints(out)


def test_grids_do_not_change_the_training(tmp_path, capsys):
    from safetensors.torch import load_file
    base = [*TINY, "steps=3", "ckpt_every=3", "lr=1e-3"]
    assert run([*base, f"out_dir={tmp_path / 'plain'}", "grid_seeds=0"], capsys)[0] == 0
    assert run([*base, f"out_dir={tmp_path / 'grids'}", "sample_every=1", "grid_seeds=0-3", "grid_steps=2",
                "grid_weights=model"], capsys)[0] == 0
    assert len(list((tmp_path / "grids" / "samples").glob("grid-*.png"))) == 3
    for part in ("model", "ema"):
        a, b = (load_file(tmp_path / name / f"{part}.safetensors") for name in ("plain", "grids"))
        assert all((a[k] == b[k]).all() for k in a), part


def test_a_grid_leaves_the_random_state_and_the_training_mode_as_they_were(tmp_path):
    "What `test_grids_do_not_change_the_training` relies on, checked directly (the tiny ViT has no dropout to show it)."
    import torch
    from minsnr.trainer import EMA, build_model
    config = TrainConfig(dataset="digits", model="vit_tiny", model_kwargs={"depth": 1, "embed_dim": 32, "num_heads": 2},
                         steps=2, out_dir=str(tmp_path / "run"), progress=False)
    model = build_model("vit_tiny", depth=1, embed_dim=32, num_heads=2, img_size=8, in_chans=1, num_classes=10).train()
    hook = cli.grid_writer(config, cli.GridOptions(grid_seeds="0-3", grid_steps=2, grid_weights="model"))
    before = torch.get_rng_state()
    hook(2, model, EMA(model))
    assert torch.equal(torch.get_rng_state(), before) and model.training
    assert (tmp_path / "run" / "samples" / "grid-00000002.png").is_file()
