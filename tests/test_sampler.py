"""`minsnr.sampler` against closed forms: Gaussian data, the three VP parameterisations, guidance, seeds."""
import json
import math
import os
import shutil

import pytest
import torch
from torch import nn

from minsnr import sampler as sampler_module
from minsnr.sampler import (SAMPLING_MANIFEST, GuidedDenoiser, VPDenoiser, euler_sampler, generate, heun_sampler,
                            karras_sigmas, parse_seeds, sample_run)
from minsnr.schedule import VPSchedule, cosine_schedule, linear_schedule, zero_terminal_snr
from minsnr.vit import vit_tiny

MU = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)  # per-dimension data means
S = torch.tensor([0.3, 1.0, 0.05], dtype=torch.float64)  # and standard deviations


def gaussian(x, sigma, labels=None):
    "The exact denoiser of N(MU, diag(S²)) data."
    sigma = sigma.view(-1, 1)
    return MU + S**2 / (S**2 + sigma**2) * (x - MU)


def test_sigmas_endpoints_and_spacing():
    s = karras_sigmas(30, 0.01, 50.0, rho=7)
    assert s[0] == pytest.approx(50.0) and s[-2] == pytest.approx(0.01) and s[-1] == 0
    roots = s[:-1] ** (1 / 7)
    torch.testing.assert_close(roots.diff(), torch.full((29,), roots.diff()[0].item(), dtype=torch.float64))


@pytest.mark.parametrize("num_steps", [40, 80])
def test_heun_recovers_per_dimension_gaussians(num_steps):
    n = 40_000
    out = heun_sampler(gaussian, torch.randn(n, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64),
                       num_steps=num_steps)
    tol_mean = 5 * S / math.sqrt(n) + MU.abs() * S / 80 + 1e-3
    tol_std = 5 * S / math.sqrt(2 * n) + 0.02 * S
    assert ((out.mean(0) - MU).abs() < tol_mean).all(), out.mean(0)
    assert ((out.std(0) - S).abs() < tol_std).all(), out.std(0)


@pytest.mark.parametrize("schedule", [cosine_schedule(), linear_schedule()], ids=["cosine", "linear"])
def test_x0_eps_v_wrappers_give_the_same_samples(schedule):
    class Exact(nn.Module):
        def __init__(self, target):
            super().__init__()
            self.target, self.p = target, nn.Parameter(torch.zeros(()))
        def forward(self, xt, t, y=None):
            a, sg = schedule.alpha(t.double()).view(-1, 1), schedule.sigma(t.double()).view(-1, 1)
            x0 = gaussian(xt.double() / a, sg / a)
            eps = (xt - a * x0) / sg
            return {"x0": x0, "eps": eps, "v": a * eps - sg * x0}[self.target]
    noise = torch.randn(500, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    outs = {t: heun_sampler(VPDenoiser(Exact(t), schedule, t), noise, num_steps=25) for t in ("x0", "eps", "v")}
    torch.testing.assert_close(outs["eps"], outs["x0"], rtol=0, atol=1e-6)
    torch.testing.assert_close(outs["v"], outs["x0"], rtol=0, atol=1e-6)


def test_vp_denoiser_clamps_the_sigma_range():
    schedule = linear_schedule()
    seen = []
    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(()))
        def forward(self, xt, t, y=None):
            seen.append(t.clone())
            return torch.zeros_like(xt)
    heun_sampler(VPDenoiser(Spy(), schedule, "x0"), torch.randn(2, 1), num_steps=5, sigma_max=1e6)
    ts = torch.cat(seen)
    assert ts.max() == pytest.approx(999) and ts.min() >= 0  # σ_max = 1e6 is clamped to the schedule's largest σ


def test_stochastic_sampler_is_reproducible_with_a_generator():
    noise = torch.randn(8, 3, dtype=torch.float64)
    run = lambda seed: heun_sampler(gaussian, noise, num_steps=10, S_churn=20, generator=torch.Generator().manual_seed(seed))
    assert torch.equal(run(0), run(0)) and not torch.equal(run(0), run(1))
    assert not torch.equal(run(0), heun_sampler(gaussian, noise, num_steps=10))


@pytest.mark.parametrize("sampler", [heun_sampler, euler_sampler], ids=["heun", "euler"])
def test_churn_noise_draws_per_step(sampler):
    "'every-step' draws once per step, as EDM's edm_sampler does; the default only on the steps that churn."
    N, S_min, S_max, x = 12, 0.1, 5.0, torch.randn(5, 3, dtype=torch.float64)
    sigmas = karras_sigmas(N)[:-1]
    churned = int(((sigmas >= S_min) & (sigmas <= S_max)).sum())
    assert 0 < churned < N
    for noise_draw, draws in (("every-step", N), ("when-churning", churned)):
        g = torch.Generator().manual_seed(0)
        sampler(gaussian, x, num_steps=N, S_churn=10, S_min=S_min, S_max=S_max, generator=g, noise_draw=noise_draw)
        ref = torch.Generator().manual_seed(0)
        for _ in range(draws): torch.randn(x.shape, generator=ref, dtype=torch.float64)
        assert torch.equal(g.get_state(), ref.get_state()), noise_draw


@pytest.mark.parametrize("sampler", [heun_sampler, euler_sampler], ids=["heun", "euler"])
def test_draw_orders_agree_when_every_step_or_no_step_churns(sampler):
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for churn in (dict(S_churn=30), dict(S_churn=0), dict(S_churn=30, S_min=1e3)):
        a, b = (sampler(gaussian, x, num_steps=10, generator=torch.Generator().manual_seed(5), noise_draw=d, **churn)
                for d in ("when-churning", "every-step"))
        assert torch.equal(a, b), churn


@pytest.mark.parametrize("sampler", [heun_sampler, euler_sampler], ids=["heun", "euler"])
def test_one_step_is_the_denoisers_estimate_from_sigma_max(sampler):
    calls = []
    def counted(x, sigma, labels=None):
        calls.append(1)
        return gaussian(x, sigma)
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    out = sampler(counted, x, num_steps=1, sigma_max=20.0)
    assert len(calls) == 1 and out.isfinite().all()
    torch.testing.assert_close(out, gaussian(20 * x, torch.full((100,), 20.0, dtype=torch.float64)), rtol=1e-12, atol=1e-12)


class Parameterless(nn.Module):
    "An analytic ε predictor (exact for the Gaussian data above) with no parameters or buffers: it records what it is fed."
    def __init__(self, schedule):
        super().__init__()
        self.schedule, self.fed = schedule, []
    def forward(self, xt, t, y=None):
        self.fed.append(xt.dtype)
        a, sg = self.schedule.alpha(t.double()).view(-1, 1), self.schedule.sigma(t.double()).view(-1, 1)
        return (xt - a * gaussian(xt.double() / a, sg / a)) / sg


def test_vp_denoiser_works_without_parameters():
    schedule = cosine_schedule()
    model = Parameterless(schedule)
    assert list(model.parameters()) == [] and list(model.buffers()) == []
    noise = torch.randn(300, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    out = heun_sampler(VPDenoiser(model, schedule, "eps"), noise, num_steps=25)
    assert set(model.fed) == {torch.float64}  # the sampler's own dtype
    # the same predictor with a float64 parameter gives the same samples
    class WithParameter(Parameterless):
        def __init__(self, schedule):
            super().__init__(schedule)
            self.p = nn.Parameter(torch.zeros((), dtype=torch.float64))
    torch.testing.assert_close(out, heun_sampler(VPDenoiser(WithParameter(schedule), schedule, "eps"), noise, num_steps=25),
                               rtol=0, atol=0)
    model.fed.clear()
    VPDenoiser(model, schedule, "eps", dtype=torch.float32)(noise[:2], torch.ones(2, dtype=torch.float64))
    assert model.fed == [torch.float32]
    func = lambda xt, t, y=None: xt * 0  # a plain function is a parameter-free model too
    assert VPDenoiser(func, schedule)(noise[:2], torch.ones(2)).abs().max() == 0


def test_vp_denoiser_follows_a_later_dtype_change():
    model = vit_tiny().eval()
    den = VPDenoiser(model, cosine_schedule(), "eps")
    x, sigma, y = torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.full((2,), 3.0, dtype=torch.float64), torch.tensor([0, 1])
    assert den(x, sigma, y).isfinite().all()
    model.double()
    seen = []
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    den(x, sigma, y)
    hook.remove()
    assert seen == [torch.float64]


# ᾱ_0 = 1: SNR(0) = ∞, the wrapper's σ_min is 0, and the sampler's σ_min = 0.002 lies below σ_EDM(1)
NOISELESS = VPSchedule(torch.cat([torch.ones(1, dtype=torch.float64), cosine_schedule().alphas_cumprod[:-1]]), "noiseless")


@pytest.mark.parametrize("schedule", [NOISELESS, zero_terminal_snr(NOISELESS)], ids=["noiseless", "noiseless+zero-snr"])
@pytest.mark.parametrize("t_mode", ["interp", "nearest"])
def test_noiseless_start_schedule_gives_finite_samples(schedule, t_mode):
    seen = []
    torch.manual_seed(0)
    model = vit_tiny().eval()
    with torch.no_grad(): model.head.weight.mul_(30)  # an untrained network that predicts something
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(args[1].clone()))
    den = VPDenoiser(model, schedule, "eps", t_mode=t_mode)
    assert den.sigma_min == 0.0 and schedule.sigma_edm(1).item() > 0.002
    with torch.no_grad():
        out = heun_sampler(den, torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)), num_steps=6,
                           class_labels=torch.tensor([0, 1, 2]))
    hook.remove()
    ts = torch.cat(seen).double()
    assert ts.isfinite().all() and ts.min() >= 0 and ts.max() <= schedule.T - 1
    assert ts.min() < 1  # the last σ, 0.002, is in the first segment, between σ_EDM(0) = 0 and σ_EDM(1)
    assert out.isfinite().all()


def test_guidance_scale_one_is_the_conditional_model():
    torch.manual_seed(0)
    model = vit_tiny().eval()
    den = VPDenoiser(model, cosine_schedule(), "eps")
    x, sigma, y = torch.randn(4, 1, 8, 8, dtype=torch.float64), torch.full((4,), 3.0, dtype=torch.float64), torch.tensor([0, 1, 2, 3])
    torch.testing.assert_close(GuidedDenoiser(den, 1.0, 10)(x, sigma, y), den(x, sigma, y))
    guided = GuidedDenoiser(den, 2.0, 10)(x, sigma, y)
    torch.testing.assert_close(guided, 2 * den(x, sigma, y) - den(x, sigma, torch.full_like(y, 10)))


def test_seeds_are_split_over_processes(monkeypatch):
    torch.manual_seed(0)
    model = vit_tiny()
    with torch.no_grad(): model.head.weight.mul_(30)
    whole, seeds, classes = generate(model, cosine_schedule(), "eps", range(5), num_steps=3)
    parts = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank)); monkeypatch.setenv("WORLD_SIZE", "2")
        parts.append(generate(model, cosine_schedule(), "eps", range(5), num_steps=3))
    assert parts[0][1] == [0, 2, 4] and parts[1][1] == [1, 3]
    torch.testing.assert_close(parts[0][0], whole[[0, 2, 4]], rtol=0, atol=1e-5)
    assert parts[1][2] == [classes[1], classes[3]]


@pytest.mark.parametrize("call,message", [
    (lambda: karras_sigmas(5, 0.0, 1.0), "sigma_min must be a finite number > 0, got 0.0"),
    (lambda: karras_sigmas(5, 0.1, math.inf), "sigma_max must be a finite number > sigma_min = 0.1, got inf"),
    (lambda: karras_sigmas(5, rho=0.0), "rho must be a finite number > 0, got 0.0"),
    (lambda: karras_sigmas(10, sigma_min=-1.0), "sigma_min must be a finite number > 0, got -1.0"),
    (lambda: heun_sampler(gaussian, torch.zeros(1, 3), num_steps=0), "num_steps must be an integer ≥ 1, got 0"),
    (lambda: euler_sampler(gaussian, torch.zeros(1, 3), sigma_min=2.0, sigma_max=1.0), "sigma_max must be a finite number > sigma_min = 2, got 1.0"),
    (lambda: GuidedDenoiser(gaussian, float("nan"), 3), "scale must be a finite number, got nan"),
    (lambda: GuidedDenoiser(gaussian, 1.5, 3)(torch.zeros(1, 3), torch.ones(1), None), "classifier-free guidance needs class_labels"),
    (lambda: GuidedDenoiser(gaussian, 2.0, 3, interval=(2.0, 1.0)), "interval must be (σ_lo, σ_hi)"),
    (lambda: VPDenoiser(vit_tiny(), cosine_schedule(), "x0", t_mode="round"), "t_mode must be one of 'interp', 'nearest', got 'round'"),
    (lambda: generate(vit_tiny(), cosine_schedule(), "x0", range(2), classes=[1]), "got 1 classes for 2 seeds"),
    (lambda: generate(vit_tiny(), cosine_schedule(), "x0", range(2), sampler="ddim"), "sampler must be one of 'heun', 'euler', got 'ddim'"),
    (lambda: generate(vit_tiny(num_classes=None), cosine_schedule(), "x0", range(2), cfg_scale=1.5),
     "cfg_scale=1.5 needs a class-conditional model"),
    (lambda: generate(vit_tiny(), cosine_schedule(), "x0", range(2), classes=[0, 10]), "class 10 is outside [0, 9]"),
    (lambda: heun_sampler(gaussian, torch.zeros(1, 3), noise_draw="edm"),
     "noise_draw must be one of 'when-churning', 'every-step', got 'edm'"),
    (lambda: euler_sampler(gaussian, torch.zeros(1, 3), noise_draw=None), "noise_draw must be one of"),
    (lambda: VPDenoiser(vit_tiny(), cosine_schedule(), dtype="float32"), "dtype must be a floating-point torch.dtype"),
    (lambda: generate(vit_tiny(), cosine_schedule(), "x0", range(2), batch_size=0), "batch_size must be an integer ≥ 1, got 0"),
    (lambda: generate(vit_tiny(), cosine_schedule(), "x0", range(2), num_steps=-1), "num_steps must be an integer ≥ 1, got -1"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


# --- sample_run: a run's samples, nothing lost, nothing silent -----------------------------------------------------

TINY = {"depth": 1, "embed_dim": 32, "num_heads": 2}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    "A finished two-step conditional digits run with a checkpoint at each step."
    from minsnr.trainer import TrainConfig, train
    out = tmp_path_factory.mktemp("run") / "run"
    train(TrainConfig(dataset="digits", model="vit_tiny", model_kwargs=TINY, global_batch=8, steps=2, log_every=1,
                      ckpt_every=1, keep_ckpts=2, out_dir=str(out), progress=False))
    return out


def pngs(folder):
    return sorted(p.name for p in folder.glob("*.png"))


def test_sample_run_resumes_and_skips_existing_pngs(run_dir, tmp_path):
    args = dict(run_dir=str(run_dir), out_dir=str(tmp_path / "png"), num_images=3, num_steps=2, cfg_scale=1.5)
    assert sample_run(**args) == 3
    first = pngs(tmp_path / "png")
    assert first == ["000000.png", "000001.png", "000002.png"]
    (tmp_path / "png" / "000001.png").unlink()
    stamp = (tmp_path / "png" / "000000.png").stat().st_mtime_ns
    assert sample_run(**args) == 1
    assert pngs(tmp_path / "png") == first
    assert (tmp_path / "png" / "000000.png").stat().st_mtime_ns == stamp  # existing images are not redrawn
    manifest = json.loads((tmp_path / "png" / SAMPLING_MANIFEST).read_text())
    assert manifest["settings"]["num_steps"] == 2 and manifest["settings"]["run_dir"] == str(run_dir.resolve())
    assert manifest["settings"]["num_classes"] == 10 and manifest["minsnr_version"]


def test_interrupted_sampling_keeps_finished_batches_and_resumes(run_dir, tmp_path, monkeypatch):
    "Ctrl-C (KeyboardInterrupt) during the 2nd batch: the 1st batch's PNGs are complete; the rerun draws only the rest."
    calls, real = [], sampler_module.heun_sampler
    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2: raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(sampler_module, "heun_sampler", interrupted)
    args = dict(run_dir=str(run_dir), out_dir=str(tmp_path / "png"), num_images=5, batch_size=2, num_steps=2)
    with pytest.raises(KeyboardInterrupt):
        sample_run(**args)
    assert pngs(tmp_path / "png") == ["000000.png", "000001.png"]
    assert not [p for p in (tmp_path / "png").iterdir() if p.suffix == ".tmp"]  # no half-written file is left
    from PIL import Image
    for name in pngs(tmp_path / "png"):
        with Image.open(tmp_path / "png" / name) as im:
            im.load()  # a complete PNG: decodes to the end
            assert im.size == (8, 8)
    stamps = {n: (tmp_path / "png" / n).stat().st_mtime_ns for n in pngs(tmp_path / "png")}
    monkeypatch.setattr(sampler_module, "heun_sampler", real)
    assert sample_run(**args) == 3  # only the missing seeds 2, 3, 4
    assert pngs(tmp_path / "png") == [f"{s:06d}.png" for s in range(5)]
    assert {n: (tmp_path / "png" / n).stat().st_mtime_ns for n in stamps} == stamps


def test_seeds_classes_and_checkpoints(run_dir, tmp_path, monkeypatch):
    seen, real = [], sampler_module.heun_sampler
    def spy(denoiser, noise, **kwargs):
        seen.append(kwargs["class_labels"].tolist())
        return real(denoiser, noise, **kwargs)
    monkeypatch.setattr(sampler_module, "heun_sampler", spy)
    assert sample_run(str(run_dir), str(tmp_path / "a"), seeds="3-4,10", classes=7, num_steps=2) == 3
    assert pngs(tmp_path / "a") == ["000003.png", "000004.png", "000010.png"] and seen == [[7, 7, 7]]
    sample_run(str(run_dir), str(tmp_path / "b"), seeds=[3, 4], num_steps=2)  # each seed's own class
    assert seen[1] == [sampler_module.seed_noise(s, (1,), 10)[1] for s in (3, 4)] != [7, 7]
    # a checkpoint of the run: exactly the weights stored in it
    from minsnr.trainer import load_checkpoint
    state = load_checkpoint(run_dir / "ckpt-00000001.pt")
    for weights in ("model", "ema"):
        model, cfg = sampler_module.load_checkpoint_model(run_dir, "ckpt-00000001.pt", weights)
        for k, v in model.state_dict().items(): assert torch.equal(v, state[weights][k]), (weights, k)
    final = sampler_module.load_checkpoint_model(run_dir, run_dir / "ckpt-00000002.pt", "model")[0].state_dict()
    assert any(not torch.equal(v, state["model"][k]) for k, v in final.items())  # step 1 ≠ step 2
    assert sample_run(str(run_dir), str(tmp_path / "c"), seeds=[3], num_steps=2, checkpoint="ckpt-00000001.pt",
                      weights="model") == 1
    settings = json.loads((tmp_path / "c" / SAMPLING_MANIFEST).read_text())["settings"]
    assert settings["checkpoint"] == str((run_dir / "ckpt-00000001.pt").resolve()) and settings["weights"] == "model"


@pytest.mark.parametrize("change,says", [
    (dict(num_steps=50), "num_steps=2 there, 50 now"),
    (dict(weights="model"), "weights='ema' there, 'model' now"),
    (dict(cfg_scale=1.5), "cfg_scale=1.0 there, 1.5 now"),
    (dict(classes=3), "classes=None there, 3 now"),
    (dict(checkpoint="ckpt-00000002.pt"), "checkpoint=None there"),
])
def test_resampling_with_other_settings_is_refused(run_dir, tmp_path, change, says):
    base = dict(run_dir=str(run_dir), out_dir=str(tmp_path / "png"), num_images=2, num_steps=2)
    sample_run(**base)
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "png").iterdir()}
    with pytest.raises(ValueError, match="pass a new out_dir") as err:
        sample_run(**{**base, **change, "num_images": 3})
    assert says in str(err.value) and "\n" not in str(err.value)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "png").iterdir()} == before  # nothing written or kept silently


def _latent_copy(run_dir, tmp_path):
    "The run, with its config saying it trained on latents (the decoder is then required)."
    copy = tmp_path / "latent_run"
    shutil.copytree(run_dir, copy)
    cfg = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**cfg, "dataset": "latents", "data_dir": str(tmp_path / "latents")}))
    return str(copy)


def _file(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    return str(tmp_path / "a_file")


def _unfinished(run_dir, tmp_path):
    copy = tmp_path / "unfinished"
    shutil.copytree(run_dir, copy)
    for name in ("ema.safetensors", "model.safetensors", "config.json", "model.json"): (copy / name).unlink()
    return str(copy)


def _truncated_checkpoint(run_dir, tmp_path):
    data = (run_dir / "ckpt-00000002.pt").read_bytes()
    (tmp_path / "ckpt-00000003.pt").write_bytes(data[: len(data) // 2])
    return str(tmp_path / "ckpt-00000003.pt")


# (argument overrides, a function of (run_dir, tmp_path) for paths, exception, message fragment)
SAMPLE_RUN_BAD_INPUT = [
    (dict(num_images=-5), None, ValueError, "num_images must be an integer ≥ 1, got -5"),
    (dict(num_images=0), None, ValueError, "num_images must be an integer ≥ 1, got 0"),
    (dict(num_images=2.5), None, ValueError, "num_images must be an integer ≥ 1, got 2.5"),
    (dict(seed_start=-1), None, ValueError, "seed_start must be an integer ≥ 0, got -1"),
    (dict(batch_size=0), None, ValueError, "batch_size must be an integer ≥ 1, got 0"),
    (dict(num_steps=0), None, ValueError, "num_steps must be an integer ≥ 1, got 0"),
    (dict(weights="best"), None, ValueError, "weights must be one of 'ema', 'model', got 'best'"),
    (dict(sampler="ddim"), None, ValueError, "sampler must be one of 'heun', 'euler', got 'ddim'"),
    (dict(t_mode="round"), None, ValueError, "t_mode must be one of 'interp', 'nearest', got 'round'"),
    (dict(cfg_scale=float("nan")), None, ValueError, "cfg_scale must be a finite number, got nan"),
    (dict(cfg_interval=(2.0, 1.0)), None, ValueError, "cfg_interval must be [σ_lo, σ_hi] with 0 ≤ σ_lo < σ_hi"),
    (dict(classes=-1), None, ValueError, "classes must be an integer ≥ 0, got -1"),
    (dict(classes=10), None, ValueError, "classes=10 is outside the run's classes [0, 9]"),
    (dict(seeds="5-2", num_images=None), None, ValueError, "the range '5-2' in '5-2' runs backwards"),
    (dict(seeds="0-3"), None, ValueError, "pass either seeds or num_images"),
    (dict(seeds="0-3", num_images=None, seed_start=5), None, ValueError, "pass either seeds or num_images (with seed_start)"),
    (dict(cfg_interval=(0.5, 2.0)), None, ValueError, "cfg_interval=[0.5, 2.0] needs guidance: set cfg_scale ≠ 1 too"),
    (dict(vae_dir="/models/vae"), None, ValueError, "vae_dir is only for latent runs, and this one trained on 'digits'"),
    (dict(out_dir=""), None, ValueError, "out_dir must name a folder for the samples, got ''"),
    ({}, lambda r, t: dict(out_dir=_file(t)), ValueError, "is a file, not a folder"),
    ({}, lambda r, t: dict(run_dir=str(t / "nowhere")), FileNotFoundError, "is not a folder: pass a training run's out_dir"),
    ({}, lambda r, t: dict(run_dir=str(t)), FileNotFoundError, "is not a minsnr run (no config.json, no ckpt-*.pt)"),
    ({}, lambda r, t: dict(run_dir=_unfinished(r, t)), FileNotFoundError,
     "has no ema.safetensors (training writes it at the end): pass checkpoint=ckpt-00000002.pt"),
    (dict(checkpoint="ckpt-00000099.pt"), None, FileNotFoundError,
     "the run's checkpoints: ckpt-00000002.pt, ckpt-00000001.pt"),
    ({}, lambda r, t: dict(checkpoint=_truncated_checkpoint(r, t)), ValueError, "ckpt-00000003.pt is unreadable"),
    ({}, lambda r, t: dict(run_dir=_latent_copy(r, t)), ValueError, "this run trained on latents: pass vae_dir="),
    ({}, lambda r, t: dict(run_dir=_latent_copy(r, t), vae_dir=str(t / "no_vae")), FileNotFoundError, "is not a folder: pass the local SD-VAE"),
]


@pytest.mark.parametrize("kwargs,paths,exc,message", SAMPLE_RUN_BAD_INPUT,
                         ids=[f"{i}-{m[:30]}" for i, (_, _, _, m) in enumerate(SAMPLE_RUN_BAD_INPUT)])
def test_sample_run_bad_input(run_dir, tmp_path, monkeypatch, kwargs, paths, exc, message):
    "Every bad argument fails before the first image is drawn, with one line naming it; nothing is written."
    monkeypatch.setattr(sampler_module, "heun_sampler", lambda *a, **k: pytest.fail("sampled before validating"))
    args = {**dict(run_dir=str(run_dir), out_dir=str(tmp_path / "png"), num_images=2, num_steps=2), **kwargs}
    args.update(paths(run_dir, tmp_path) if paths else {})
    with pytest.raises(exc) as err:
        sample_run(**args)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "png").exists()


PARSE_SEEDS_BAD_INPUT = [
    ("", "cannot read ''"), ("0-63,", "cannot read ''"), ("a-b", "cannot read 'a-b'"), ("-3", "cannot read '-3'"),
    ("1-2-3", "cannot read '1-2-3'"), ("5-2", "runs backwards; write it as '2-5'"), ("0-3,2", "seed 2 appears twice"),
    ([1, -1], "integers ≥ 0, got -1"), ([1.5], "integers ≥ 0, got 1.5"), ([], "no seed"), (True, "got True"),
]


@pytest.mark.parametrize("seeds,message", PARSE_SEEDS_BAD_INPUT)
def test_parse_seeds_bad_input(seeds, message):
    with pytest.raises(ValueError) as err:
        parse_seeds(seeds)
    assert message in str(err.value)


def test_parse_seeds():
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10] and parse_seeds("7") == [7] and parse_seeds(" 1 , 4-5") == [1, 4, 5]
    assert parse_seeds(range(3)) == [0, 1, 2] and parse_seeds(4) == [4] and parse_seeds("0-63") == list(range(64))


SAMPLE_IN_A_CHILD = """
import sys, time
from minsnr import sampler
real, calls = sampler.heun_sampler, []
def slow_second_batch(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:
        print("second batch", flush=True)
        time.sleep(120)
    return real(*args, **kwargs)
sampler.heun_sampler = slow_second_batch
sampler.sample_run(sys.argv[1], sys.argv[2], num_images=5, batch_size=2, num_steps=2)
"""


@pytest.mark.slow
def test_sigterm_keeps_finished_batches(run_dir, tmp_path):
    "SIGTERM (a scheduler's kill) during the 2nd batch of a separate process: the 1st batch is on disk, complete."
    import signal
    import subprocess
    import sys
    child = subprocess.Popen([sys.executable, "-c", SAMPLE_IN_A_CHILD, str(run_dir), str(tmp_path / "png")],
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert child.stdout.readline().strip() == "second batch"
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == -signal.SIGTERM
    finally:
        if child.poll() is None: child.kill()
    assert pngs(tmp_path / "png") == ["000000.png", "000001.png"]
    from PIL import Image
    for name in pngs(tmp_path / "png"):
        with Image.open(tmp_path / "png" / name) as im: im.load()
    assert sample_run(str(run_dir), str(tmp_path / "png"), num_images=5, batch_size=2, num_steps=2) == 3
    assert pngs(tmp_path / "png") == [f"{s:06d}.png" for s in range(5)]


# --- the sampling manifest -------------------------------------------------------------------------------------------

MANIFEST = dict(zip(sampler_module.MANIFEST_SETTINGS, ["runs/a", None, "ema", 18, "heun", 1.0, None, "interp", 0.002, 80.0, 7.0, None]))


@pytest.mark.parametrize("prepare,message", [
    (lambda d: sampler_module.save_pngs(torch.zeros(1, 1, 8, 8), [0], d),
     "already holds 1 PNGs (e.g. 000000.png) but no sampling.json, so their settings are unknown: pass a new out_dir"),
    (lambda d: (d.mkdir(exist_ok=True), (d / SAMPLING_MANIFEST).write_text("{not json")),
     "is not a readable sampling manifest"),
    (lambda d: sampler_module.check_manifest(d, {**MANIFEST, "sampler": "euler"}),
     "(sampler='euler' there, 'heun' now; see its sampling.json): pass a new out_dir"),
], ids=["pngs-without-manifest", "unreadable", "other-setting"])
def test_check_manifest_refuses(tmp_path, prepare, message):
    prepare(tmp_path / "png")
    with pytest.raises(ValueError) as err:
        sampler_module.check_manifest(tmp_path / "png", MANIFEST)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_check_manifest_writes_once_and_atomically(tmp_path):
    path = sampler_module.check_manifest(tmp_path / "png", MANIFEST)
    saved = json.loads(path.read_text())
    assert saved["settings"] == MANIFEST and "minsnr_version" in saved
    assert sampler_module.check_manifest(tmp_path / "png", {**MANIFEST, "dataset": "digits"}) == path  # same settings: kept
    assert json.loads(path.read_text()) == saved and [p.name for p in (tmp_path / "png").iterdir()] == [SAMPLING_MANIFEST]
