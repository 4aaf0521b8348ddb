"""The training loop: bit-exact resume, crash-safe checkpoints, SIGTERM, torchrun parity, clear errors, nothing lost."""
import importlib.util
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

import minsnr.cli as cli
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


def test_a_longer_run_repeats_a_shorter_one_step_for_step(tmp_path):
    "With a constant lr after warm-up and the EMA warm-up counting updates, nothing in the first steps depends on the run's length."
    data = Blobs()
    kw = dict(warmup_steps=2, ckpt_every=4, keep_ckpts=2, precision="bf16")
    train(config(tmp_path, "short", steps=4, **kw), data)
    train(config(tmp_path, "long", steps=8, **kw), data)
    short, long = (trainer.load_checkpoint(trainer.checkpoint_path(tmp_path / n, 4)) for n in ("short", "long"))
    for part in ("model", "ema"):
        for key in short[part]: assert torch.equal(short[part][key], long[part][key]), f"{part}.{key} differs at step 4"


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


def test_an_optimisation_step_reads_nothing_back_from_its_tensors(monkeypatch):
    "Between log lines a step never waits for the device: no .item(), .tolist(), bool() … of a tensor, except the data"
    " loader's own index arithmetic on the CPU. (The value checks of the backbone are off, as they are on a GPU.)"
    import traceback
    from minsnr.trainer import DistInfo, _accumulate, _apply_gradients, _build_run, _new_window, _set_hyperparameters, step_loader
    cfg = config(Path("/unused"), model_kwargs={**TINY, "check_values": False}, global_batch=8, steps=100)
    info, run = DistInfo(), None
    run = _build_run(cfg, Blobs(), info)
    batches, window = iter(step_loader(run.dataset, cfg, 0, 1, 0)), _new_window(info)
    shape = tuple(run.dataset[0][0].shape)

    def step():
        _set_hyperparameters(run, cfg)
        _apply_gradients(run, cfg, _accumulate(run, cfg, run.model, batches, shape, 8, info, window), Path("/unused"), window, info)

    step()  # the first step builds the optimiser's state
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy"):
        real = getattr(torch.Tensor, name)
        def reading(self, *a, _real=real, _name=name, **k):
            caller = traceback.extract_stack(limit=2)[0]
            reads.append((_name, Path(caller.filename).name, caller.name))
            return _real(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, reading)
    for _ in range(3): step()
    monkeypatch.undo()
    outside_loader = [r for r in reads if r[2] not in ("__iter__", "batch", "__getitem__")]
    assert not outside_loader, outside_loader


def test_auto_precision_is_what_the_run_records_and_resumes_with(tmp_path):
    "precision='auto' trains in what it means on the device (fp32 on a CPU), records that, and continues an fp32 run."
    data = Blobs()
    train(config(tmp_path, "old", steps=3, precision="fp32"), data)  # a run made before 'auto' existed
    train(config(tmp_path, "old", steps=6), data)  # 'auto' on a CPU is fp32: the same configuration
    assert json.loads((tmp_path / "old" / "config.json").read_text())["precision"] == "fp32"
    assert torch.load(tmp_path / "old" / "ckpt-00000006.pt", weights_only=True)["config"]["precision"] == "fp32"
    with pytest.raises(ValueError, match=r"configuration differs in precision: 'fp32' → 'bf16'"):
        train(config(tmp_path, "old", steps=9, precision="bf16"), data)


def test_device_drawn_noise_is_the_same_for_any_split_of_the_batch(tmp_path, monkeypatch):
    "Where each process draws its own rows' noise (accelerators), a step split in micro-batches trains what one batch does."
    import minsnr.trainer as trainer
    data = Blobs()
    train(config(tmp_path, "host", steps=2, ckpt_every=2), data)
    monkeypatch.setattr(trainer, "HOST_NOISE_DEVICES", ())  # the accelerators' path, on the CPU
    train(config(tmp_path, "one", steps=2, ckpt_every=2), data)
    train(config(tmp_path, "acc", steps=2, ckpt_every=2, grad_accum=4), data)
    host, a, b = weights(tmp_path / "host"), weights(tmp_path / "one"), weights(tmp_path / "acc")
    for k in a["model"]: torch.testing.assert_close(a["model"][k], b["model"][k], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(a["model"][k], host["model"][k]) for k in a["model"])  # it did draw other noise


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
    weights = tmp_path / "r" / "ema.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a copy cut short
    with pytest.raises(ValueError, match=f"{weights} cannot be read .*: it is truncated or not a safetensors file"):
        trainer.load_run(tmp_path / "r")


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


NEW_STATE = {"uncertainty": {"uncertainty": True},
             "adaptive": {"adaptive_weighting": True, "weighting": "const", "grad_accum": 2},
             "lr-ratio": {"beta1_end": 0.5, "beta1_compensation": "lr-ratio"},
             "demon": {"beta1_compensation": "demon"}}


@pytest.mark.parametrize("extra", list(NEW_STATE.values()), ids=list(NEW_STATE))
def test_learned_weightings_and_compensation_resume_bit_for_bit(tmp_path, extra):
    "ν(σ) and its AdamW group, the bucket statistics, the compensated rate: an interrupted run resumes them exactly."
    data = Blobs()
    train(config(tmp_path, "full", keep_ckpts=5, **extra), data)
    with pytest.raises(_Interrupt):
        train(config(tmp_path, "split", keep_ckpts=5, **extra), data, on_step=_interrupt_at(4))
    second = train(config(tmp_path, "split", keep_ckpts=5, **extra), data)
    assert second["resumed_from"].endswith("ckpt-00000003.pt")
    assert_same(weights(tmp_path / "full"), weights(tmp_path / "split"))
    a, b = (torch.load(tmp_path / n / "ckpt-00000006.pt", weights_only=True) for n in ("full", "split"))
    for key in ("uncertainty", "adaptive_weighting"):
        assert (key in a) == (key in b) == bool(extra.get(key))
        if key in a: assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for i, sa in a["optimizer"]["state"].items():
        assert all(torch.equal(v, b["optimizer"]["state"][i][k]) for k, v in sa.items())
    if "uncertainty" in a:  # ν trained: its own group without weight decay, off zero
        assert a["optimizer"]["param_groups"][1]["weight_decay"] == 0.0 and a["uncertainty"]["linear.bias"].item() != 0
    if "adaptive_weighting" in a:  # the buckets of the 6 × 8 samples moved, the others stayed at 1
        assert 0 < int((a["adaptive_weighting"]["losses"] != 1).sum()) <= 48
    train(config(tmp_path, "plain"), data)  # and it really differs from the plain run
    plain = weights(tmp_path / "plain")["model"]
    assert any(not torch.equal(plain[k], v) for k, v in weights(tmp_path / "full")["model"].items())


def test_compensation_is_what_the_optimizer_used(tmp_path):
    "Eq. (lr-compensation) and Eq. (demon) against closed forms written here, read back from checkpoints."
    ratio = config(tmp_path, "ratio", betas=(0.9, 0.99), beta1_end=0.5, beta1_compensation="lr-ratio", keep_ckpts=5,
                   lr=1e-3, warmup_steps=0)
    train(ratio, Blobs())
    group = torch.load(tmp_path / "ratio" / "ckpt-00000003.pt", weights_only=True)["optimizer"]["param_groups"][0]
    beta1 = 0.9 + (0.5 - 0.9) * 2 / 6  # step 3 used s = 2
    assert group["betas"][0] == pytest.approx(beta1, abs=1e-12)
    assert group["lr"] == pytest.approx(1e-3 * (1 - beta1) / (1 - 0.9), rel=1e-12)
    demon = config(tmp_path, "demon", betas=(0.9, 0.99), beta1_compensation="demon", keep_ckpts=5, lr=1e-3)
    train(demon, Blobs())
    group = torch.load(tmp_path / "demon" / "ckpt-00000003.pt", weights_only=True)["optimizer"]["param_groups"][0]
    rest = 1 - 2 / 6  # Demon (arXiv 1910.04952): β_t = β0(1 − τ) / ((1 − β0) + β0(1 − τ))
    assert group["betas"][0] == pytest.approx(0.9 * rest / (0.1 + 0.9 * rest), abs=1e-12) and group["lr"] == 1e-3
    assert trainer.beta1_at(6, demon) == 0.0 and trainer.lr_compensation(3, demon) == 1.0


def test_adaptive_weighting_with_accumulation_equals_one_big_batch(tmp_path):
    "The bucket statistics are applied once per step from all micro-batches, so grad_accum does not change them."
    kw = dict(adaptive_weighting=True, weighting="const", keep_ckpts=5, steps=3)
    train(config(tmp_path, "one", **kw), Blobs())
    train(config(tmp_path, "two", grad_accum=2, **kw), Blobs())
    a, b = (torch.load(tmp_path / n / "ckpt-00000003.pt", weights_only=True)["adaptive_weighting"]["losses"] for n in ("one", "two"))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=0)
    assert not torch.equal(a, torch.ones_like(a))


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


# ---------------------------------------------------------------------------------------------------------------------
# Bad input to TrainConfig: every case fails at once with a message that names the field (the count is visible here)

NO_TENSORBOARD = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is not None, reason="tensorboard is installed")
BAD_CONFIGS = [
    ({"progress": "no"}, "progress must be True or False, got 'no'"),
    ({"progress": 1}, "progress must be True or False, got 1"),
    ({"compile": "false"}, "compile must be True or False, got 'false'"),
    ({"tensorboard": "yes"}, "tensorboard must be True or False, got 'yes'"),
    pytest.param({"tensorboard": True}, "tensorboard=True needs the tensorboard package", marks=NO_TENSORBOARD),
    ({"seed": "abc"}, "seed must be an integer ≥ 0, got 'abc'"),
    ({"steps": 0}, "steps must be an integer ≥ 1, got 0"),
    ({"steps": 2.5}, "steps must be an integer ≥ 1, got 2.5"),
    ({"steps": True}, "steps must be an integer ≥ 1, got True"),
    ({"keep_ckpts": 0}, "keep_ckpts must be an integer ≥ 1, got 0"),
    ({"weighting": "const", "gamma": 5}, "weighting='const' has no γ, but gamma=5 was given: set gamma=None"),
    ({"weighting": "snr", "gamma": 1.0}, "weighting='snr' has no γ, but gamma=1.0 was given"),
    ({"out_dir": ""}, "out_dir must be a non-empty string, got ''"),
    ({"resume": ""}, "resume must be a non-empty string, got ''"),
    ({"dataset": "imagefolder"}, "dataset='imagefolder' reads local files: set data_dir=<folder>, got data_dir=None"),
    ({"dataset": "celeba64", "data_dir": ""}, "dataset='celeba64' reads local files: set data_dir=<folder>"),
    ({"data_dir": "/data"}, "dataset='digits' is bundled and takes no data_dir, got data_dir='/data'"),
    ({"dataset": "mnist"}, "unknown dataset 'mnist'; valid choices:"),
    ({"lr": "1e-3"}, "lr must be a finite number > 0, got '1e-3'"),
    ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
    ({"lr_schedule": "exp"}, "lr_schedule must be one of 'constant', 'cosine', 'linear', got 'exp'"),
    ({"schedule": "sigmoid"}, "unknown schedule 'sigmoid'; valid choices: 'cosine', 'linear', 'cosine-zt', 'linear-zt'"),
    ({"schedule": "cosine-zt", "target": "eps", "weighting": "const"}, "has an infinite loss weight at t=999"),
    ({"ema_decay": 1.0}, "ema_decay must be a number in [0, 1), got 1.0"),
    ({"ema_warmup_power": 0}, "ema_warmup_power must be a number > 0 or None (a fixed ema_decay), got 0"),
    ({"ema_warmup_power": "2/3"}, "ema_warmup_power must be a number > 0 or None (a fixed ema_decay), got '2/3'"),
    ({"class_drop_prob": 1.0}, "class_drop_prob must be a number in [0, 1), got 1.0"),
    ({"weight_decay": -0.1}, "weight_decay must be a finite number ≥ 0, got -0.1"),
    ({"grad_clip": "none"}, "grad_clip must be a finite number ≥ 0 (0: off), got 'none'"),
    ({"betas": (0.9,)}, "betas must be two numbers in [0, 1), got (0.9,)"),
    ({"betas": (0.9, 1.0)}, "betas must be two numbers in [0, 1), got (0.9, 1.0)"),
    ({"betas": "0.9"}, "betas must be two numbers in [0, 1), got '0.9'"),
    ({"beta1_end": 1.0}, "beta1_end must be a number in [0, 1) or None (no momentum decay), got 1.0"),
    ({"lr": float("inf")}, "lr must be a finite number > 0, got inf"),
    ({"num_timesteps": 1}, "num_timesteps must be an integer ≥ 2, got 1"),
    ({"weighting": "min_snr_x"}, "unknown loss weighting strategy"),
    ({"timestep_sampler": "curriculum", "timestep_sampler_options": {"max_drop": 2}}, "max_drop must be in [0, 1)"),
    ({"model_kwargs": "depth=2"}, "model_kwargs must be a mapping, got 'depth=2'"),
    ({"precision": "fp8"}, "precision must be one of 'auto', 'fp32', 'bf16', 'fp16', got 'fp8'"),
    ({"uncertainty": 1}, "uncertainty must be True or False, got 1"),
    ({"adaptive_weighting": "yes"}, "adaptive_weighting must be True or False, got 'yes'"),
    ({"adaptive_weighting": True}, "adaptive_weighting=True sets the weight of every log-SNR bucket itself, so weighting='min-snr' would cancel out: set weighting='const'"),
    ({"adaptive_weighting": True, "weighting": "const", "uncertainty": True},
     "uncertainty=True and adaptive_weighting=True both divide each noise level's loss by its running size: choose one"),
    ({"beta1_compensation": "adam"}, "beta1_compensation must be one of 'none', 'lr-ratio', 'demon', got 'adam'"),
    ({"beta1_compensation": "lr-ratio"}, "beta1_compensation='lr-ratio' compensates a momentum decay: set beta1_end"),
    ({"beta1_compensation": "demon", "beta1_end": 0.5}, "beta1_compensation='demon' decays β1 to 0 by its own rule: set beta1_end=None, got 0.5"),
]


@pytest.mark.parametrize("fields, message", BAD_CONFIGS, ids=lambda v: "-".join(f"{k}={v[k]!r}" for k in v) if isinstance(v, dict) else "")
def test_bad_config(fields, message):
    with pytest.raises(ValueError) as err:
        TrainConfig(**fields)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("make, message", [
    (lambda: TrainConfig(global_batch=100, grad_accum=3).per_step_batch(1),
     "global_batch=100 is not divisible by 1 processes × grad_accum=3"),
    (lambda: trainer.EMA(torch.nn.Linear(1, 1), decay=1.0), "ema_decay must be a number in [0, 1), got 1.0"),
    (lambda: trainer.EMA(torch.nn.Linear(1, 1), power=0), "ema_warmup_power must be a number > 0 or None (a fixed ema_decay), got 0"),
    (lambda: trainer.build_model("resnet"), "unknown model 'resnet'; valid choices: 'vit_tiny', 'vit_s'"),
    (lambda: trainer.load_run("/nowhere", weights="best"), "weights must be one of 'ema', 'model', got 'best'"),
], ids=["per_step_batch", "ema-decay", "ema-power", "build_model", "load_run-weights"])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_metrics_are_appended_and_weights_written_atomically(tmp_path, monkeypatch):
    "Checkpoints and weights go through atomic_write; metrics.jsonl is appended line by line (never rewritten whole)."
    paths = []
    real = trainer.atomic_write
    monkeypatch.setattr(trainer, "atomic_write", lambda path, write: paths.append(Path(path).name) or real(path, write))
    train(config(tmp_path, steps=4, ckpt_every=4, log_every=2), Blobs())
    assert "metrics.jsonl" not in paths and paths.count("ckpt-00000004.pt") == 1
    assert paths.count("model.safetensors") == paths.count("ema.safetensors") == 1
    assert [json.loads(l)["step"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()] == [2, 4]
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_a_torn_metrics_line_is_dropped_on_resume(tmp_path):
    "A process killed while appending leaves half a line; resuming drops it and the steps after the checkpoint."
    train(config(tmp_path, steps=4, ckpt_every=2, log_every=1), Blobs())
    metrics = tmp_path / "run" / "metrics.jsonl"
    with open(metrics, "a") as f: f.write('{"step": 5, "lo')
    assert trainer.truncate_metrics(metrics, 2) == 3  # steps 3 and 4, and the torn line
    assert [json.loads(l)["step"] for l in metrics.read_text().splitlines()] == [1, 2]


def test_good_configs_are_accepted():
    "The new choices themselves are valid (so the errors above are about the values, not the fields)."
    TrainConfig(schedule="cosine-zt", target="eps", weighting="min-snr", lr_schedule="cosine", ema_warmup_power=None)
    TrainConfig(dataset="imagefolder", data_dir="/data", weighting="const", gamma=None)
    TrainConfig(uncertainty=True, weighting="edm", beta1_end=0.9, beta1_compensation="lr-ratio")
    TrainConfig(adaptive_weighting=True, weighting="const", beta1_compensation="demon")


# ---------------------------------------------------------------------------------------------------------------------
# Nothing lost: each data-loss case of the issue, and that nothing of the earlier run changed

def snapshot(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}


def test_resume_never_refuses_a_folder_that_holds_a_run(tmp_path):
    data = Blobs()
    train(config(tmp_path, "r", steps=3), data)
    before = snapshot(tmp_path / "r")
    with pytest.raises(ValueError, match=r"already holds a run \(ckpt-00000003.pt, config.json, model.safetensors, "
                                         r"ema.safetensors\) and resume='never' would overwrite it: choose a new out_dir, "
                                         r"set resume='auto' to continue it, or remove the folder yourself"):
        train(config(tmp_path, "r", steps=3, resume="never"), data)
    assert snapshot(tmp_path / "r") == before
    assert train(config(tmp_path, "fresh", steps=3, resume="never"), data)["step"] == 3  # an empty folder is fine


def test_config_differs_message_does_not_recommend_overwriting(tmp_path):
    train(config(tmp_path, "r", steps=3), Blobs())
    with pytest.raises(ValueError) as err:
        train(config(tmp_path, "r", steps=6, lr=2e-4), Blobs())
    assert "resume='never'" not in str(err.value) and "use a new out_dir" in str(err.value)


def test_corrupt_checkpoints_with_keep_one_never_lose_the_good_one(tmp_path):
    "keep_ckpts=1, the only checkpoint corrupt and a newer corrupt file beside it: new checkpoints survive, nothing is deleted."
    data = Blobs()
    with pytest.raises(_Interrupt):
        train(config(tmp_path, "r", keep_ckpts=1), data, on_step=_interrupt_at(4))  # crashed after the step-3 checkpoint
    (tmp_path / "r" / "ckpt-00000003.pt").write_bytes(b"\x80\x02garbage")
    (tmp_path / "r" / "ckpt-00000099.pt").write_bytes(b"PK\x03\x04truncated")  # sorts as newer than anything we write
    with pytest.warns(UserWarning) as caught:
        summary = train(config(tmp_path, "r", keep_ckpts=1), data)
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert len(messages) == 2 and all("weights_only" not in m and "\n" not in m for m in messages)
    assert any("ckpt-00000099.pt is unreadable" in m for m in messages)
    assert summary["resumed_from"] is None and summary["step"] == 6  # restarted: there was nothing to resume from
    assert sorted(p.name for p in (tmp_path / "r").glob("ckpt-*")) == [
        "ckpt-00000003.pt.corrupt", "ckpt-00000006.pt", "ckpt-00000099.pt.corrupt"]
    assert trainer.checkpoint_problem(tmp_path / "r" / "ckpt-00000006.pt") is None


def test_a_checkpoint_that_does_not_load_back_is_set_aside_and_the_previous_one_kept(tmp_path, monkeypatch):
    data = Blobs()
    real = trainer.checkpoint_problem
    monkeypatch.setattr(trainer, "checkpoint_problem", lambda p: "simulated" if p.name == "ckpt-00000006.pt" else real(p))
    with pytest.warns(UserWarning, match="ckpt-00000006.pt is unreadable"):
        train(config(tmp_path, "r", keep_ckpts=1), data)
    assert sorted(p.name for p in (tmp_path / "r").glob("ckpt-*")) == ["ckpt-00000003.pt", "ckpt-00000006.pt.corrupt"]


def test_lock_refuses_a_second_writer_and_takes_over_a_stale_one(tmp_path, capfd):
    out = tmp_path / "r"
    out.mkdir()
    lock = out / trainer.LOCK_NAME
    lock.write_text(json.dumps({"pid": os.getppid(), "host": trainer.socket.gethostname()}))  # alive: our parent
    with pytest.raises(trainer.RunLockedError, match=rf"in use by process {os.getppid()} .*lock file {lock}"):
        train(config(tmp_path, "r", steps=3), Blobs())
    assert sorted(p.name for p in out.iterdir()) == [trainer.LOCK_NAME]  # the other writer's folder is untouched
    dead = subprocess.Popen([sys.executable, "-c", "pass"]); dead.wait()
    lock.write_text(json.dumps({"pid": dead.pid, "host": trainer.socket.gethostname()}))
    assert train(config(tmp_path, "r", steps=3), Blobs())["step"] == 3
    assert f"taking over the stale lock {lock} of process {dead.pid}" in capfd.readouterr().err
    assert not lock.exists()  # released when the run ends


def test_metrics_have_no_duplicate_steps_after_a_kill(tmp_path):
    "Killed at step 5 (checkpoint at 3): the resumed run re-logs 4 and 5, and each step is in metrics.jsonl once."
    data = Blobs()
    with pytest.raises(_Interrupt):
        train(config(tmp_path, "r"), data, on_step=_interrupt_at(5))
    steps = lambda: [json.loads(l)["step"] for l in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert steps() == [1, 2, 3, 4, 5]
    train(config(tmp_path, "r"), data)
    assert steps() == [1, 2, 3, 4, 5, 6]


def test_fewer_steps_than_the_checkpoint_is_an_error(tmp_path):
    train(config(tmp_path, "r", steps=6), Blobs())
    with pytest.raises(ValueError, match=r"steps=3 is less than the step 6 of the checkpoint .*ckpt-00000006.pt: "
                                         r"a run cannot be shortened"):
        train(config(tmp_path, "r", steps=3), Blobs())


def test_out_dir_that_is_a_file_or_an_unloadable_resume_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="out_dir=.* is a file, not a folder"):
        train(config(tmp_path, "f"), Blobs())
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"resume=.*bad.pt': cannot load the checkpoint \(UnpicklingError"):
        train(config(tmp_path, resume=str(tmp_path / "bad.pt")), Blobs())


# ---------------------------------------------------------------------------------------------------------------------
# EMA warm-up, LR schedules, zero terminal SNR, signals, start-up and log lines

def test_ema_warmup_resumes_bit_for_bit_and_is_on_by_default(tmp_path):
    data = Blobs()
    kw = dict(ema_decay=0.8, ema_warmup_power=0.5)
    train(config(tmp_path, "full", **kw), data)
    with pytest.raises(_Interrupt):
        train(config(tmp_path, "split", **kw), data, on_step=_interrupt_at(4))
    state = torch.load(tmp_path / "split" / "ckpt-00000003.pt", weights_only=True)
    assert state["ema_updates"] == 3
    assert train(config(tmp_path, "split", **kw), data)["resumed_from"].endswith("ckpt-00000003.pt")
    assert_same(weights(tmp_path / "full"), weights(tmp_path / "split"))
    train(config(tmp_path, "fixed", ema_decay=0.8, ema_warmup_power=None), data)
    fixed, warm = weights(tmp_path / "fixed")["ema"], weights(tmp_path / "full")["ema"]
    assert any(not torch.equal(fixed[k], warm[k]) for k in fixed)  # the warm-up really changes the EMA
    assert TrainConfig().ema_warmup_power == pytest.approx(2 / 3)


def test_ema_warmup_first_update_copies_the_network(tmp_path):
    seen = {}
    def hook(step, model, ema):
        if step == 1: seen.update(model={k: v.clone() for k, v in model.state_dict().items()}, ema=ema.state_dict())
    train(config(tmp_path, steps=1), Blobs(), on_step=hook)
    assert all(torch.equal(seen["model"][k], seen["ema"][k]) for k in seen["model"])


def test_fixed_decay_longer_than_the_run_warns(tmp_path):
    with pytest.warns(UserWarning, match=r"ema_decay=0.9999 without warm-up averages over ~10000 steps, more than steps=3"):
        train(config(tmp_path, "fixed", steps=3, ema_warmup_power=None, ema_decay=0.9999), Blobs())
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the default warm-up does not warn
        train(config(tmp_path, "warm", steps=3, ema_decay=0.9999), Blobs())


@pytest.mark.parametrize("schedule, expected", [("linear", [1.0, 0.75, 0.5, 0.25]), ("constant", [1.0] * 4),
                                                ("cosine", [1.0, 0.853553, 0.5, 0.146447])])
def test_lr_schedule_is_what_the_optimizer_used(tmp_path, schedule, expected):
    train(config(tmp_path, steps=4, lr=1e-3, lr_schedule=schedule), Blobs())
    lrs = [json.loads(l)["lr"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert lrs == pytest.approx([1e-3 * e for e in expected], rel=1e-5)


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
def test_zero_terminal_snr_trains_without_nan(tmp_path, target):
    "Every step draws t = T−1 (SNR = 0) for some images: the min-SNR loss stays finite for every target."
    summary = train(config(tmp_path, steps=3, schedule="cosine-zt", target=target, global_batch=8,
                           timestep_sampler="uniform", timestep_sampler_options={"low": 990}), Blobs())
    assert summary["status"] == "finished"
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert torch.isfinite(torch.tensor(record["loss"])) and "NaN" not in line
    for value in load_file(tmp_path / "run" / "model.safetensors").values(): assert value.isfinite().all()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_checkpoints_and_says_what_stopped_it(tmp_path, signum):
    def hook(step, model, ema):
        if step == 4:
            os.kill(os.getpid(), signum)
            time.sleep(0.05)  # the handler runs here
    summary = train(config(tmp_path, steps=100, ckpt_every=50), Blobs(), on_step=hook)
    name = signal.Signals(signum).name
    assert summary["stopped_by"] == name and summary["status"] == f"stopped by {name}" and summary["step"] == 4
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["ckpt-00000004.pt"]
    done = train(config(tmp_path, steps=6, ckpt_every=50), Blobs())
    assert done["resumed_from"].endswith("ckpt-00000004.pt") and done["stopped_by"] is None and done["step"] == 6


def test_startup_summary_and_log_lines_without_a_terminal(tmp_path, capfd):
    data = Blobs()
    with pytest.raises(_Interrupt):
        train(config(tmp_path, log_every=2, progress=True), data, on_step=_interrupt_at(4))
    err = capfd.readouterr().err
    assert f"new run in {tmp_path / 'run'}: digits vit_tiny cosine target=x0 weighting=min-snr" in err
    assert "step 2/6 loss " in err and "step 4/6 loss " in err and "\r" not in err  # one line per log_every, no bar
    train(config(tmp_path, log_every=2, progress=True), data)
    err = capfd.readouterr().err
    assert f"resuming {tmp_path / 'run'} from ckpt-00000003.pt at step 3 (dropped 1 metrics lines after step 3)" in err


@pytest.mark.slow  # torchrun starts two processes through the command line
@pytest.mark.parametrize("extra", [{}, {"uncertainty": True}, {"adaptive_weighting": True, "weighting": "const"}],
                         ids=["plain", "uncertainty", "adaptive"])
def test_launch_with_torchrun_two_processes_match_one(tmp_path, monkeypatch, extra):
    "Two processes train what one does; ν's gradients and the bucket statistics are reduced over the processes."
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    kw = dict(dataset="digits", model="vit_tiny", model_kwargs=TINY, global_batch=16, progress=False, log_every=1,
              steps=4, ckpt_every=4, class_drop_prob=0.15, **extra)
    one = train(TrainConfig(**kw, out_dir=str(tmp_path / "one")))  # in this process: the reference
    two = cli.launch(TrainConfig(**kw, out_dir=str(tmp_path / "two")), gpus=2)
    assert one["step"] == two["step"] == 4
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    for part in a:
        for k in a[part]: torch.testing.assert_close(a[part][k], b[part][k], rtol=1e-4, atol=1e-6)
    states = [torch.load(tmp_path / n / "ckpt-00000004.pt", weights_only=True) for n in ("one", "two")]
    for key in ("uncertainty", "adaptive_weighting"):
        if key in states[0]:  # without the reduction rank 0 would have seen only its half of each step
            for k, v in states[0][key].items(): torch.testing.assert_close(v, states[1][key][k], rtol=1e-4, atol=1e-6)


def test_ema_follows_the_model_it_is_given_and_sees_in_place_updates():
    "The EMA walks the module trees once; it still follows a different model when given one, and in-place optimiser updates."
    from minsnr.trainer import EMA
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ema = EMA(a, decay=0.5, power=None)
    with torch.no_grad(): a.weight.add_(1.0)  # as an optimiser step does
    ema.update(a)
    torch.testing.assert_close(ema.model.weight, a.weight - 0.5)  # halfway from the old weights to the new
    with torch.no_grad(): b.weight.copy_(a.weight + 4.0)
    ema.update(b)  # another model: its own weights, not the first one's
    torch.testing.assert_close(ema.model.weight, (a.weight - 0.5 + a.weight + 4.0) / 2)


@pytest.mark.parametrize("world_size, rank", [(1, 0), (2, 1)])
def test_in_memory_batches_are_the_dataloader_batches(world_size, rank):
    "On a CPU without loader workers a bundled dataset is read one gather per batch: the same batches as a DataLoader's."
    from minsnr.data import make_dataset
    from minsnr.trainer import ShardedInfiniteSampler, step_loader
    ds = make_dataset("digits", split="train", hflip=True)
    cfg = TrainConfig(dataset="digits", global_batch=16, seed=3)
    fast = step_loader(ds, cfg, rank, world_size, start_step=5)
    assert not isinstance(fast, torch.utils.data.DataLoader)
    micro = cfg.per_step_batch(world_size)
    sampler = ShardedInfiniteSampler(len(ds), rank, world_size, cfg.seed, start_index=5 * cfg.global_batch, batch_size=micro)
    reference = torch.utils.data.DataLoader(ds, batch_size=micro, sampler=sampler)
    for (x, y), (x_ref, y_ref), _ in zip(fast, reference, range(40)):
        assert torch.equal(x, x_ref) and torch.equal(y, y_ref) and y.dtype == y_ref.dtype
