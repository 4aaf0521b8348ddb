"""The training loop: bit-exact resume, crash-safe checkpoints, SIGTERM, torchrun parity, clear errors."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import minsnr.trainer as trainer
from minsnr.trainer import TrainConfig, list_checkpoints, train

TINY = {"depth": 1, "embed_dim": 32, "num_heads": 2}


class Blobs(torch.utils.data.Dataset):
    "A few fixed 1×8×8 images with 3 classes: fast and fully deterministic."
    num_classes = 3

    def __init__(self, n=40, fill=None):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 1, 8, 8, generator=g).tanh()
        if fill is not None: self.x[:] = fill
        self.y = torch.arange(n) % 3

    def __len__(self): return len(self.x)
    def __getitem__(self, i): return self.x[i], self.y[i]


def config(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(model="vit_tiny", model_kwargs=TINY, global_batch=8, steps=6, ckpt_every=3, log_every=1,
                out_dir=str(tmp_path / name), progress=False, timestep_sampler="uniform")
    return TrainConfig(**(base | kw))


def weights(run_dir) -> dict:
    return {k: load_file(Path(run_dir) / f"{k}.safetensors") for k in ("model", "ema")}


def assert_same(a: dict, b: dict):
    for part in a:
        assert a[part].keys() == b[part].keys()
        for key in a[part]: assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"


@pytest.mark.parametrize("sampler", ["uniform", "loss-second-moment"])
def test_resumed_run_equals_uninterrupted_bit_for_bit(tmp_path, sampler):
    data = Blobs()
    full = train(config(tmp_path, "full", timestep_sampler=sampler), data)
    assert full["status"] == "finished" and full["step"] == 6
    first = train(config(tmp_path, "split", steps=3, timestep_sampler=sampler), data)
    assert first["step"] == 3
    second = train(config(tmp_path, "split", steps=6, timestep_sampler=sampler), data)
    assert second["resumed_from"].endswith("ckpt-00000003.pt") and second["step"] == 6
    assert_same(weights(tmp_path / "full"), weights(tmp_path / "split"))
    lines = [json.loads(l) for l in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [1, 2, 3, 4, 5, 6] and len(lines[0]["x0_mse_by_bin"]) == trainer.NUM_BINS


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    data = Blobs()
    real_save, calls = torch.save, []

    def dying_save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # the second checkpoint: write half a file, then "crash"
            f.write(b"\x80\x02partial")
            raise OSError("disk full (simulated)")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(trainer.torch, "save", dying_save)
    with pytest.raises(OSError, match="simulated"):
        train(config(tmp_path, "crash", steps=9), data)
    monkeypatch.setattr(trainer.torch, "save", real_save)
    assert [p.name for p in list_checkpoints(tmp_path / "crash")] == ["ckpt-00000003.pt"]
    resumed = train(config(tmp_path, "crash", steps=9), data)
    assert resumed["resumed_from"].endswith("ckpt-00000003.pt") and resumed["step"] == 9
    train(config(tmp_path, "clean", steps=9), data)
    assert_same(weights(tmp_path / "clean"), weights(tmp_path / "crash"))


def test_corrupt_newest_checkpoint_falls_back(tmp_path):
    data = Blobs()
    train(config(tmp_path, "r", steps=6), data)
    (tmp_path / "r" / "ckpt-00000006.pt").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable"):
        summary = train(config(tmp_path, "r", steps=8), data)
    assert summary["resumed_from"].endswith("ckpt-00000003.pt") and summary["step"] == 8


def test_resume_with_a_different_config_names_the_fields(tmp_path):
    data = Blobs()
    train(config(tmp_path, "r", steps=3), data)
    with pytest.raises(ValueError, match=r"configuration differs in weighting: 'min-snr' → 'const'; lr: 0.0001 → 0.0002"):
        train(config(tmp_path, "r", steps=6, lr=2e-4, weighting="const"), data)


def test_missing_resume_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume='/nope.pt': no such checkpoint file"):
        train(config(tmp_path, resume="/nope.pt"), Blobs())


def test_non_finite_loss_stops_with_the_last_good_checkpoint(tmp_path):
    class Poisoned(Blobs):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return (x * float("nan") if self.poison else x), y
    data = Poisoned()
    data.poison = False
    train(config(tmp_path, "nan", steps=3), data)
    data.poison = True
    with pytest.raises(FloatingPointError, match=r"non-finite loss or gradient at step 3 .* last good checkpoint is .*ckpt-00000003.pt"):
        train(config(tmp_path, "nan", steps=6), data)
    assert [p.name for p in list_checkpoints(tmp_path / "nan")] == ["ckpt-00000003.pt"]


def test_gradient_clipping_clips(tmp_path, monkeypatch):
    seen = []
    real_step = torch.optim.AdamW.step

    def recording_step(self, *a, **k):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        seen.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    train(config(tmp_path, "clip", steps=3, grad_clip=1e-3), Blobs())
    logged = [json.loads(l)["grad_norm"] for l in (tmp_path / "clip" / "metrics.jsonl").read_text().splitlines()]
    assert all(n <= 1e-3 * 1.0001 for n in seen) and all(n > 1e-3 for n in logged)  # logged: the norm before clipping


def test_grad_accumulation_equals_one_big_batch(tmp_path):
    data = Blobs()
    train(config(tmp_path, "one", steps=2, ckpt_every=2), data)
    train(config(tmp_path, "acc", steps=2, ckpt_every=2, grad_accum=2), data)
    a, b = weights(tmp_path / "one"), weights(tmp_path / "acc")
    for k in a["model"]: torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)


def _cli(*args, env=None, **kw):
    return [sys.executable, "-m", "minsnr.trainer", *args]


CLI_ARGS = ["dataset=digits", "model=vit_tiny", "model_kwargs={depth: 1, embed_dim: 32, num_heads: 2}",
            "global_batch=16", "progress=false", "log_every=1"]


@pytest.mark.slow  # a real subprocess, trained until signalled
def test_sigterm_checkpoints_and_resumes(tmp_path):
    out = tmp_path / "sig"
    proc = subprocess.Popen(_cli(*CLI_ARGS, "steps=100000", "ckpt_every=100000", f"out_dir={out}"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["status"] == "stopped by SIGTERM"
    stopped_at = summary["step"]
    assert [p.name for p in list_checkpoints(out)] == [f"ckpt-{stopped_at:08d}.pt"]
    done = subprocess.run(_cli(*CLI_ARGS, f"steps={stopped_at + 2}", "ckpt_every=100000", f"out_dir={out}"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["step"] == stopped_at + 2


@pytest.mark.slow  # torchrun starts two processes
def test_torchrun_two_processes_match_one(tmp_path):
    args = [*CLI_ARGS, "steps=4", "ckpt_every=4", "class_drop_prob=0.15"]
    one = subprocess.run(_cli(*args, f"out_dir={tmp_path / 'one'}"), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "minsnr.trainer"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    two = subprocess.run([*torchrun, *args, f"out_dir={tmp_path / 'two'}"], capture_output=True, text=True, timeout=300, env=env)
    assert two.returncode == 0, two.stderr
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    for part in a:
        for k in a[part]: torch.testing.assert_close(a[part][k], b[part][k], rtol=1e-4, atol=1e-6)
    m1 = [json.loads(l)["loss"] for l in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    m2 = [json.loads(l)["loss"] for l in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert m1 == pytest.approx(m2, rel=1e-4)


def test_fp16_skips_non_finite_steps_instead_of_stopping(tmp_path):
    class SometimesInf(Blobs):
        def __getitem__(self, i):
            x, y = super().__getitem__(i)
            return (x * float("inf") if i == 0 else x), y  # every batch that holds image 0 overflows
    data = SometimesInf(n=16)
    summary = train(config(tmp_path, "fp16", steps=4, global_batch=8, precision="fp16"), data)
    assert summary["status"] == "finished"
    lines = [json.loads(l) for l in (tmp_path / "fp16" / "metrics.jsonl").read_text().splitlines()]
    assert sum(l["skipped_steps"] for l in lines) >= 1
    for key, value in load_file(tmp_path / "fp16" / "model.safetensors").items():
        assert value.isfinite().all(), key  # the skipped steps left the weights intact


def test_load_run_gives_back_the_ema_model(tmp_path):
    train(config(tmp_path, "r", steps=2), Blobs())
    model, cfg = trainer.load_run(tmp_path / "r")
    assert cfg.steps == 2 and cfg.model_kwargs == TINY and model.config.num_classes == 3
    ema = load_file(tmp_path / "r" / "ema.safetensors")
    assert all(torch.equal(v, ema[k]) for k, v in model.state_dict().items())
    with pytest.raises(FileNotFoundError, match="is missing: is .* a finished minsnr run"):
        trainer.load_run(tmp_path)


class _Interrupt(Exception): pass


def _interrupt_at(stop_step):
    def hook(step, model, ema):
        if step == stop_step: raise _Interrupt
    return hook


@pytest.mark.parametrize("extra", [{"timestep_sampler": "curriculum", "timestep_sampler_options": {"stages": 3, "max_drop": 0.9}},
                                   {"beta1_end": 0.5}], ids=["curriculum", "momentum-decay"])
def test_progress_dependent_runs_resume_bit_for_bit(tmp_path, extra):
    "The curriculum's stage and the decayed β1 depend on the step: a resumed run must pick them up exactly."
    data = Blobs()
    train(config(tmp_path, "full", **extra), data)
    with pytest.raises(_Interrupt):
        train(config(tmp_path, "split", **extra), data, on_step=_interrupt_at(4))  # dies after the step-3 checkpoint
    second = train(config(tmp_path, "split", **extra), data)
    assert second["resumed_from"].endswith("ckpt-00000003.pt")
    assert_same(weights(tmp_path / "full"), weights(tmp_path / "split"))
    # and it really differs from the plain run
    train(config(tmp_path, "plain"), data)
    plain = weights(tmp_path / "plain")["model"]
    assert any(not torch.equal(plain[k], v) for k, v in weights(tmp_path / "full")["model"].items())


def test_momentum_decay_and_curriculum_state_in_checkpoints(tmp_path):
    cfg = config(tmp_path, steps=6, ckpt_every=3, keep_ckpts=5, beta1_end=0.5, betas=(0.9, 0.99),
                 timestep_sampler="curriculum", timestep_sampler_options={"stages": 2})
    train(cfg, Blobs())
    state = torch.load(list_checkpoints(cfg.out_dir)[-1], weights_only=False)  # oldest kept: step 3
    assert state["step"] == 3
    beta1 = state["optimizer"]["param_groups"][0]["betas"][0]
    assert beta1 == pytest.approx(trainer.beta1_at(2, cfg)) and beta1 == pytest.approx(0.9 - 0.4 * 2 / 6)
    assert state["timestep_sampler"]["progress"] == pytest.approx(2 / 6)


def test_on_step_is_called_after_every_step_with_the_ema(tmp_path):
    seen = []
    train(config(tmp_path), Blobs(), on_step=lambda step, model, ema: seen.append((step, ema.decay)))
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5, 6]
