"""`minsnr.sampler` against closed forms: Gaussian data, the three VP parameterisations, guidance, seeds."""
import math
import os

import pytest
import torch
from torch import nn

from minsnr.sampler import GuidedDenoiser, VPDenoiser, euler_sampler, generate, heun_sampler, karras_sigmas
from minsnr.schedule import cosine_schedule, linear_schedule
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
    (lambda: karras_sigmas(5, 0.0, 1.0), "need 0 < sigma_min < sigma_max"),
    (lambda: heun_sampler(gaussian, torch.zeros(1, 3), num_steps=0), "num_steps must be an integer ≥ 1, got 0"),
    (lambda: euler_sampler(gaussian, torch.zeros(1, 3), sigma_min=2.0, sigma_max=1.0), "sigma_min=2.0, sigma_max=1.0"),
    (lambda: GuidedDenoiser(gaussian, float("nan"), 3), "guidance scale must be finite"),
    (lambda: GuidedDenoiser(gaussian, 2.0, 3, interval=(2.0, 1.0)), "interval must be (σ_lo, σ_hi)"),
    (lambda: VPDenoiser(vit_tiny(), cosine_schedule(), "x0", t_mode="round"), "t_mode must be 'interp' or 'nearest'"),
    (lambda: generate(vit_tiny(), cosine_schedule(), "x0", range(2), classes=[1]), "got 1 classes for 2 seeds"),
    (lambda: generate(vit_tiny(), cosine_schedule(), "x0", range(2), sampler="ddim"), "sampler must be 'heun' or 'euler'"),
])
def test_bad_input(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_sample_cli_resumes_and_skips_existing_pngs(tmp_path):
    from minsnr.sampler import main
    from minsnr.trainer import TrainConfig, train
    train(TrainConfig(dataset="digits", model="vit_tiny", model_kwargs={"depth": 1, "embed_dim": 32, "num_heads": 2},
                      global_batch=8, steps=2, log_every=1, ckpt_every=2, out_dir=str(tmp_path / "run"), progress=False))
    main([f"run_dir={tmp_path / 'run'}", f"out_dir={tmp_path / 'png'}", "num_images=3", "num_steps=2", "cfg_scale=1.5"])
    first = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert first == ["000000.png", "000001.png", "000002.png"]
    (tmp_path / "png" / "000001.png").unlink()
    stamp = (tmp_path / "png" / "000000.png").stat().st_mtime_ns
    main([f"run_dir={tmp_path / 'run'}", f"out_dir={tmp_path / 'png'}", "num_images=3", "num_steps=2", "cfg_scale=1.5"])
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == first
    assert (tmp_path / "png" / "000000.png").stat().st_mtime_ns == stamp  # existing images are not redrawn
