"""minsnr.interop against independent transcriptions of the peers' formulas (diffusers, k-diffusion) and closed forms."""
import math

import pytest
import torch

diffusers = pytest.importorskip("diffusers")
from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler, FlowMatchEulerDiscreteScheduler  # noqa: E402
from diffusers.training_utils import compute_snr  # noqa: E402

from minsnr.interop import (KDiffusionWeighting, diffusers_loss_weight, diffusers_snr, flow_matching_weight,  # noqa: E402
                            kdiffusion_weighting)
from minsnr.weighting import WEIGHTINGS, loss_weight  # noqa: E402

T = torch.arange(1000)
SCHEDULES = ["squaredcos_cap_v2", "linear", "scaled_linear"]
PREDICTIONS = ["epsilon", "v_prediction", "sample"]


def snr_gamma_branch(scheduler, timesteps, snr_gamma):
    """Transcription of the `snr_gamma` branch of huggingface/diffusers
    examples/text_to_image/train_text_to_image.py (lines 1025-1039 at commit 58eb52c0803ea9af3abec60841c2a093bdf1f951),
    with the SNR of src/diffusers/training_utils.py `compute_snr` at the same commit."""
    alphas_cumprod = scheduler.alphas_cumprod
    alpha = (alphas_cumprod ** 0.5)[timesteps].float()
    sigma = ((1.0 - alphas_cumprod) ** 0.5)[timesteps].float()
    snr = (alpha / sigma) ** 2
    weights = torch.stack([snr, snr_gamma * torch.ones_like(timesteps)], dim=1).min(dim=1)[0]
    if scheduler.config.prediction_type == "epsilon":
        weights = weights / snr
    elif scheduler.config.prediction_type == "v_prediction":
        weights = weights / (snr + 1)
    return weights


def rel_diff(ours, theirs):
    return ((ours.double() - theirs.double()).abs() / theirs.double().abs().clamp(min=1e-30)).max().item()


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_transcribed_snr_matches_diffusers_compute_snr(schedule):
    "The transcription is faithful: it reproduces the installed diffusers' compute_snr, and ours agrees in float64."
    s = DDPMScheduler(beta_schedule=schedule)
    alpha, sigma = s.alphas_cumprod[T] ** 0.5, (1 - s.alphas_cumprod[T]) ** 0.5
    torch.testing.assert_close(compute_snr(s, T), (alpha / sigma) ** 2)
    assert rel_diff(diffusers_snr(s, T), compute_snr(s, T)) < 1e-5


@pytest.mark.parametrize("gamma", [1.0, 5.0])
@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_min_snr_matches_diffusers_snr_gamma_branch(schedule, prediction, gamma):
    s = DDPMScheduler(beta_schedule=schedule, prediction_type=prediction)
    ours, theirs = diffusers_loss_weight(s, T, "min-snr", gamma), snr_gamma_branch(s, T, gamma)
    assert ours.dtype == torch.float32 and ours.shape == (1000,)
    assert rel_diff(ours, theirs) < 1e-5  # float32 precision of their SNR (measured ≤ 4e-7)


@pytest.mark.parametrize("prediction", PREDICTIONS)
@pytest.mark.parametrize("schedule", ["scaled_linear", "squaredcos_cap_v2"])
def test_zero_terminal_snr_is_finite_where_diffusers_is_nan(schedule, prediction):
    s = DDPMScheduler(beta_schedule=schedule, prediction_type=prediction, rescale_betas_zero_snr=True)
    ours, theirs = diffusers_loss_weight(s, T, "min-snr", 5.0), snr_gamma_branch(s, T, 5.0)
    assert ours.isfinite().all()
    assert rel_diff(ours[:-1], theirs[:-1]) < 1e-5
    if prediction == "epsilon": assert theirs[-1].isnan()  # 0/0 in the script
    # exact limits at SNR = 0: min(SNR, γ)/SNR → 1 (ε), min(SNR, γ)/(SNR + 1) → 0 (v), min(SNR, γ) → 0 (x0)
    assert ours[-1].item() == {"epsilon": 1.0, "v_prediction": 0.0, "sample": 0.0}[prediction]


@pytest.mark.parametrize("cls", [DDIMScheduler, EulerDiscreteScheduler])
def test_other_alphas_cumprod_schedulers(cls):
    s = cls(beta_schedule="scaled_linear", prediction_type="v_prediction")
    a = s.alphas_cumprod.double()[T]
    torch.testing.assert_close(diffusers_loss_weight(s, T, "min-snr", 5.0).double(),
                               (a / (1 - a)).clamp(max=5) / (a / (1 - a) + 1), rtol=1e-6, atol=0)


@pytest.mark.parametrize("strategy", sorted(WEIGHTINGS))
def test_every_strategy_is_available_and_finite(strategy):
    s = DDPMScheduler(beta_schedule="linear", rescale_betas_zero_snr=True)
    w = diffusers_loss_weight(s, T, strategy)
    torch.testing.assert_close(w, loss_weight(diffusers_snr(s, T), strategy, "eps").float())
    assert not w.isnan().any()


def test_dtype_and_device_follow_timesteps():
    s = DDPMScheduler()
    assert diffusers_loss_weight(s, torch.tensor([1, 2])).dtype == torch.float32
    assert diffusers_loss_weight(s, torch.tensor([1.0, 2.0], dtype=torch.float64)).dtype == torch.float64
    assert diffusers_loss_weight(s, torch.tensor([1.0, 2.0], dtype=torch.bfloat16)).dtype == torch.bfloat16
    if torch.cuda.is_available():
        w = diffusers_loss_weight(s, torch.tensor([1, 999], device="cuda"))
        assert w.device.type == "cuda" and w.dtype == torch.float32
        torch.testing.assert_close(w.cpu(), diffusers_loss_weight(s, torch.tensor([1, 999])))


@pytest.mark.parametrize("make, timesteps, message", [
    (lambda: DDPMScheduler(prediction_type="flow"), [1], "prediction_type must be one of 'epsilon', 'v_prediction', 'sample'"),
    (object, [1], "cannot read a noise schedule from object"),
    (DDPMScheduler, [1000], "timesteps must be in [0, 999]"),
    (DDPMScheduler, [1.5], "timesteps must be whole numbers"),
    (DDPMScheduler, [float("nan")], "not NaN"),
    (FlowMatchEulerDiscreteScheduler, [1001.0], "timesteps must be in [0, 1000]"),
])
def test_diffusers_errors(make, timesteps, message):
    with pytest.raises(ValueError) as e:
        diffusers_loss_weight(make(), torch.tensor(timesteps))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_unknown_strategy_names_the_choices():
    with pytest.raises(ValueError, match="valid choices"):
        diffusers_loss_weight(DDPMScheduler(), T, "min-snrr")


# --- flow matching ---------------------------------------------------------------------------------------------------

def test_flow_matching_weight_closed_forms():
    t = torch.linspace(0, 1, 1001, dtype=torch.float64)
    snr = ((1 - t) / t) ** 2
    torch.testing.assert_close(flow_matching_weight(t, "min-snr", 5.0), (t ** 2 * snr.clamp(max=5)).nan_to_num(0.0))
    torch.testing.assert_close(flow_matching_weight(t, "snr"), (1 - t) ** 2)
    torch.testing.assert_close(flow_matching_weight(t, "const"), t ** 2)
    torch.testing.assert_close(flow_matching_weight(t, "soft-min-snr", 2.0)[1:], (t ** 2 * snr * 2 / (snr + 2))[1:])
    w = flow_matching_weight(torch.tensor([0.0, 1.0]), "max-snr", 1.0)  # max(SNR, 1)·t²: → 1 at t = 0, → 1 at t = 1
    assert w.tolist() == [1.0, 1.0]


def test_flow_matching_weight_turns_velocity_error_into_x0_error():
    "Independent of the derivation: build x̂0 = x_t − t·v̂ and compare the two losses."
    g = torch.Generator().manual_seed(0)
    x0, eps, v_hat = (torch.randn(64, 3, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    t = torch.rand(64, generator=g, dtype=torch.float64).clamp(0.01, 0.99)
    tt = t[:, None, None, None]
    xt, v = (1 - tt) * x0 + tt * eps, eps - x0
    x0_hat = xt - tt * v_hat
    snr = ((1 - t) / t) ** 2
    lhs = flow_matching_weight(t, "min-snr", 5.0) * (v - v_hat).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(lhs, snr.clamp(max=5) * (x0 - x0_hat).pow(2).flatten(1).mean(1))


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_scheduler_timesteps_map_to_sigmas(shift):
    s = FlowMatchEulerDiscreteScheduler(shift=shift)  # diffusers: timesteps = sigmas · num_train_timesteps
    w = diffusers_loss_weight(s, s.timesteps, "min-snr", 5.0)
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, flow_matching_weight(s.sigmas[: len(s.timesteps)], "min-snr", 5.0), rtol=1e-5, atol=1e-7)
    ends = diffusers_loss_weight(s, torch.tensor([0.0, 1000.0]), "snr")
    assert ends.tolist() == [1.0, 0.0]  # t = 0: (1 − t)² = 1; t = 1: 0


def test_flow_refuses_vp_names():
    with pytest.raises(ValueError, match="VP prediction target"):
        flow_matching_weight(torch.tensor([0.5]), "vmin-snr-5")


# --- k-diffusion -----------------------------------------------------------------------------------------------------
# Transcription of crowsonkb/k-diffusion k_diffusion/layers.py, class Denoiser (commit
# 4601bf085320592473f681a62808ed873d17fad5): weighting 'karras' = ones_like, '_weighting_snr', '_weighting_soft_min_snr'
# and get_scalings' c_skip, c_out.

def kd_weighting(name, sigma, sigma_data):
    if name == "karras": return torch.ones_like(sigma)
    if name == "snr": return sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)
    if name == "soft-min-snr": return (sigma * sigma_data) ** 2 / (sigma ** 2 + sigma_data ** 2) ** 2
    raise ValueError(name)


def kd_scalings(sigma, sigma_data):
    c_skip = sigma_data ** 2 / (sigma ** 2 + sigma_data ** 2)
    c_out = sigma * sigma_data / (sigma ** 2 + sigma_data ** 2) ** 0.5
    return c_skip, c_out


SIGMAS = torch.logspace(-3, 3, 601, dtype=torch.float64)
KD_PAIRS = [("karras", "edm"), ("snr", "snr"), ("soft-min-snr", "soft-min-snr")]


@pytest.mark.parametrize("sigma_data", [0.5, 1.0])
@pytest.mark.parametrize("theirs, ours", KD_PAIRS)
def test_kdiffusion_weightings_match(theirs, ours, sigma_data):
    torch.testing.assert_close(kdiffusion_weighting(ours, sigma_data)(SIGMAS), kd_weighting(theirs, SIGMAS, sigma_data),
                               rtol=1e-12, atol=0)
    w32 = kdiffusion_weighting(ours, sigma_data)(SIGMAS.float())
    assert w32.dtype == torch.float32
    assert rel_diff(w32, kd_weighting(theirs, SIGMAS.float(), sigma_data)) < 1e-5


@pytest.mark.parametrize("strategy", sorted(WEIGHTINGS))
def test_kdiffusion_weighting_turns_f_error_into_x0_error(strategy):
    "Build D = c_skip·x + c_out·F and F_target as Denoiser.loss does; the weighted F loss is w(SNR)·‖D − x0‖²."
    sigma_data, g = 0.5, torch.Generator().manual_seed(1)
    x0, eps, f_hat = (torch.randn(32, 2, 4, 4, generator=g, dtype=torch.float64) for _ in range(3))
    sigma = torch.logspace(-2, 2, 32, dtype=torch.float64)
    c_skip, c_out = (c[:, None, None, None] for c in kd_scalings(sigma, sigma_data))
    x = x0 + eps * sigma[:, None, None, None]
    f_target, d = (x0 - c_skip * x) / c_out, c_skip * x + c_out * f_hat
    weighting = kdiffusion_weighting(strategy, sigma_data)
    lhs = weighting(sigma) * (f_hat - f_target).pow(2).flatten(1).mean(1)
    rhs = WEIGHTINGS[weighting.weighting.name].x0_weight(sigma ** -2, weighting.gamma) * (d - x0).pow(2).flatten(1).mean(1)
    torch.testing.assert_close(lhs, rhs)


def test_kdiffusion_ends_and_hard_min_snr():
    sigma = torch.tensor([0.0, math.inf], dtype=torch.float64)
    # σ = 0 (SNR = ∞) and σ = ∞ (SNR = 0): limits of w(SNR)/(SNR + γ_d)
    assert kdiffusion_weighting("min-snr", 0.5, 5.0)(sigma).tolist() == [0.0, 0.0]
    assert kdiffusion_weighting("snr", 0.5)(sigma).tolist() == [1.0, 0.0]
    assert kdiffusion_weighting("edm", 0.5)(sigma).tolist() == [1.0, 1.0]
    assert kdiffusion_weighting("const", 0.5)(sigma).tolist() == [0.0, 0.25]  # 1/γ_d = σ_d² at σ = ∞
    # σ_d = 1: F is the VP model's v, so hard min-SNR equals minsnr's v-space weight
    s = torch.logspace(-3, 3, 61, dtype=torch.float64)
    torch.testing.assert_close(kdiffusion_weighting("min-snr", 1.0, 5.0)(s), loss_weight(s ** -2, "min-snr", "v", 5.0))


def test_kdiffusion_gamma_defaults():
    assert kdiffusion_weighting("soft-min-snr", 0.5).gamma == 4.0  # 1/σ_d²
    assert kdiffusion_weighting("soft-min-snr-2", 0.5).gamma == 2.0
    assert kdiffusion_weighting("min-snr", 0.5).gamma == 5.0  # the paper's γ
    assert repr(kdiffusion_weighting("edm", 0.5)) == "KDiffusionWeighting('edm', sigma_data=0.5, gamma=4)"
    assert isinstance(kdiffusion_weighting(), KDiffusionWeighting)


@pytest.mark.parametrize("call, message", [
    (lambda: kdiffusion_weighting("min-snr", 0.0), "sigma_data must be a finite number > 0, got 0.0"),
    (lambda: kdiffusion_weighting("min-snr")(torch.tensor([-1.0])), "sigma must be in [0, inf]"),
    (lambda: kdiffusion_weighting("vmin-snr-5"), "names a VP prediction target"),
    (lambda: flow_matching_weight(torch.tensor([1.5])), "sigma must be in [0, 1]"),
])
def test_errors_are_one_line(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in str(e.value) and "\n" not in str(e.value)
