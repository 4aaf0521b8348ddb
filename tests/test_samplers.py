"""Timestep samplers: reproducibility, devices, checkpoint round trips mid-way, and the loss-aware sampler's bookkeeping."""
import pytest
import torch

from minsnr.weighting import TIMESTEP_SAMPLERS, LossSecondMomentSampler, timestep_sampler


@pytest.mark.parametrize("name", list(TIMESTEP_SAMPLERS))
def test_same_generator_same_draws(name):
    a = timestep_sampler(name, T=64).sample(500, generator=torch.Generator().manual_seed(7))
    b = timestep_sampler(name, T=64).sample(500, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[0].dtype == torch.int64 and a[1].dtype == torch.float32 and 0 <= a[0].min() and a[0].max() < 64


@pytest.mark.parametrize("name", list(TIMESTEP_SAMPLERS))
def test_probs_are_a_distribution(name):
    p = timestep_sampler(name, T=1000).probs()
    assert p.shape == (1000,) and (p > 0).all() and abs(p.sum().item() - 1) < 1e-12


def test_history_keeps_the_newest_losses():
    s = LossSecondMomentSampler(T=2, history=3)
    s.update(torch.tensor([0, 0, 1, 0, 0]), torch.tensor([1.0, 2.0, 5.0, 3.0, 4.0]))
    assert s.losses[0].tolist() == [2.0, 3.0, 4.0] and s.counts.tolist() == [3, 1] and not s.warmed_up
    s.update(torch.tensor([1, 1]), torch.tensor([5.0, 5.0]))
    assert s.warmed_up
    rms = torch.tensor([(4 + 9 + 16) / 3, 25.0], dtype=torch.float64).sqrt()
    want = rms / rms.sum() * (1 - 0.001) + 0.001 / 2
    torch.testing.assert_close(s.probs(), want)


def test_resume_mid_warmup_continues_identically():
    g = torch.Generator().manual_seed(3)
    a = LossSecondMomentSampler(T=20, history=4)
    for _ in range(5):
        t, _ = a.sample(16, generator=g)
        a.update(t, t.double() + 1)
    b = LossSecondMomentSampler(T=20, history=4)
    b.load_state_dict(a.state_dict())
    for s in (a, b):
        t, _ = s.sample(64, generator=torch.Generator().manual_seed(9))
        s.update(t, t.double() + 1)
    assert torch.equal(a.losses, b.losses) and torch.equal(a.counts, b.counts) and torch.equal(a.probs(), b.probs())


def test_logit_normal_concentrates_in_the_middle():
    t, _ = timestep_sampler("logit-normal", T=1000).sample(100_000, generator=torch.Generator().manual_seed(0))
    middle = ((t >= 250) & (t < 750)).double().mean().item()
    assert middle > 0.6  # P(|u| < logit(0.75) = 1.0986) = 0.727 under N(0, 1); uniform would give 0.5


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="lognormal"), "unknown timestep sampler 'lognormal'; valid choices: 'uniform', 'logit-normal'"),
    (dict(name="loss-second-moment", history=0), "history must be an integer ≥ 1, got 0"),
    (dict(name="loss-second-moment", uniform_prob=1.5), "uniform_prob must be in [0, 1], got 1.5"),
    (dict(name="logit-normal", mean=float("nan")), "mean must be finite"),
    (dict(name="uniform", T=2.5), "T must be an integer ≥ 2, got 2.5"),
])
def test_bad_sampler_options(kwargs, message):
    with pytest.raises(ValueError) as err:
        timestep_sampler(**kwargs)
    assert message in str(err.value)


# --- SD3's flow-time densities (Esser et al. 2024, Section 3.1), against closed forms and a transcription of diffusers ---
# Transcribed from huggingface/diffusers src/diffusers/training_utils.py (commit 58eb52c0803ea9af3abec60841c2a093bdf1f951):
#   compute_density_for_timestep_sampling("mode"): u = rand; u = 1 - u - mode_scale * (cos(pi * u / 2) ** 2 - 1 + u)
#   compute_loss_weighting_for_sd3("cosmap"): 2 / (pi * (1 - 2 * sigmas + 2 * sigmas ** 2))
#   and in their training scripts: indices = (u * num_train_timesteps).long()
import math

import numpy as np
from scipy import integrate, optimize

from minsnr.weighting import CosMapSampler, CurriculumSampler, ModeSampler
from minsnr.schedule import get_schedule


def diffusers_mode(u, mode_scale=1.29):
    return 1 - u - mode_scale * (np.cos(math.pi * u / 2) ** 2 - 1 + u)


def diffusers_cosmap_weight(sigmas):
    return 2 / (math.pi * (1 - 2 * sigmas + 2 * sigmas**2))


def mode_cdf(tau, s=1.29):
    "P(f(u) ≤ τ) = 1 − f⁻¹(τ) for the decreasing map f, by root finding on the transcription."
    if tau <= 0: return 0.0
    if tau >= 1: return 1.0
    return 1 - optimize.brentq(lambda u: diffusers_mode(u, s) - tau, 0.0, 1.0, xtol=1e-15, rtol=1e-15)


def cosmap_cdf(tau):
    "The integral of diffusers' CosMap density from 0 to τ, numerically."
    return integrate.quad(diffusers_cosmap_weight, 0.0, tau, epsabs=1e-14, epsrel=1e-13)[0]


def edges_cdf(cdf, T):
    return np.array([cdf(k / T) for k in range(T + 1)])


@pytest.mark.parametrize("make,cdf", [(lambda T: ModeSampler(T), mode_cdf),
                                      (lambda T: ModeSampler(T, scale=-0.7), lambda x: mode_cdf(x, -0.7)),
                                      (lambda T: CosMapSampler(T), cosmap_cdf)])
def test_probs_match_the_independent_cdf(make, cdf):
    T = 1000
    want = np.diff(edges_cdf(cdf, T))
    np.testing.assert_allclose(make(T).probs().numpy(), want, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("make,cdf", [(ModeSampler, mode_cdf), (CosMapSampler, cosmap_cdf)])
def test_draws_against_the_cdf_ks(make, cdf):
    "Kolmogorov–Smirnov distance of 200 000 draws (seed 0) from the closed-form CDF of ⌊T·τ⌋, below the 1 % critical value."
    T, n = 1000, 200_000
    t, w = make(T).sample(n, generator=torch.Generator().manual_seed(0))
    ecdf = np.cumsum(np.bincount(t.numpy(), minlength=T)) / n
    ks = np.abs(ecdf - edges_cdf(cdf, T)[1:]).max()
    assert ks < 1.63 / math.sqrt(n), ks
    assert torch.equal(w, torch.ones(n))


def test_mode_map_is_diffusers_formula():
    u = torch.rand(10_000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = ModeSampler(1000, scale=1.29).flow_time(u)
    np.testing.assert_allclose(ours.numpy(), diffusers_mode(u.numpy()), rtol=0, atol=1e-15)
    # the same generator gives the same integer timesteps as diffusers' (u * T).long() on the mapped u
    t, _ = ModeSampler(1000).sample(10_000, generator=torch.Generator().manual_seed(1))
    assert np.array_equal(t.numpy(), np.clip((diffusers_mode(u.numpy()) * 1000).astype(np.int64), 0, 999))


def test_cosmap_density_is_diffusers_weight():
    "T·p_t is diffusers' CosMap loss weight at the bin centre, to the midpoint rule's O(1/T²)."
    T = 1000
    mid = (np.arange(T) + 0.5) / T
    np.testing.assert_allclose(T * CosMapSampler(T).probs().numpy(), diffusers_cosmap_weight(mid), rtol=0, atol=1e-5)


def test_cosmap_map_inverts_its_cdf():
    "SD3's map τ = 1 − 1/(tan(πu/2) + 1) has P(τ ≤ f(u)) = u."
    u = np.linspace(0.01, 0.99, 99)
    tau = CosMapSampler().flow_time(torch.from_numpy(u)).numpy()
    np.testing.assert_allclose([cosmap_cdf(x) for x in tau], u, atol=1e-12)


@pytest.mark.parametrize("make", [lambda: ModeSampler(unbiased=True), lambda: CosMapSampler(unbiased=True)])
def test_unbiased_weights_are_inverse_probabilities(make):
    s = make()
    t, w = s.sample(1000, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(w.double(), 1 / (s.T * s.probs()[t]), rtol=1e-6, atol=0)


# --- the curriculum: the default path is unchanged; μ (a reconstruction) ---
def old_curriculum_probs(T, schedule, stages, max_drop, easy, progress):
    "The curriculum as it was before μ existed: p ∝ 1 − c_k·ρ_t, c_k = c_max·k/(K − 1), ρ_t = σ_t² (or 1 − σ_t² for 'clean')."
    rho = get_schedule(schedule, T).sigma(torch.arange(T)).double().square()
    ease = rho if easy == "noisy" else 1 - rho
    stage = min(int(progress * stages), stages - 1)
    c = max_drop * (stage / (stages - 1) if stages > 1 else 1.0)
    p = 1 - c * ease
    return p / p.sum()


@pytest.mark.parametrize("kwargs", [dict(), dict(stages=3, max_drop=0.7), dict(easy="clean"), dict(schedule="linear", stages=1)])
@pytest.mark.parametrize("progress", [0.0, 0.4, 1.0])
def test_default_curriculum_draws_as_before(kwargs, progress):
    opts = dict(T=1000, schedule="cosine", stages=4, max_drop=0.5, easy="noisy") | kwargs
    s = CurriculumSampler(**{k: v for k, v in opts.items() if k != "easy" or "easy" in kwargs})
    s.set_progress(progress)
    want = old_curriculum_probs(progress=progress, **opts)
    assert torch.equal(s.probs(), want)
    t, w = s.sample(4096, generator=torch.Generator().manual_seed(11))
    assert torch.equal(t, torch.multinomial(want, 4096, replacement=True, generator=torch.Generator().manual_seed(11)))
    assert torch.equal(w, torch.ones(4096)) and "mu" not in repr(s) and f"easy={opts['easy']!r}" in repr(s)


@pytest.mark.parametrize("mu", [0.0, 0.3, 0.5, 0.9])
def test_curriculum_mu_peaks_at_mu(mu):
    T, c_max = 1000, 0.5
    s = CurriculumSampler(T, mu=mu, max_drop=c_max)
    assert torch.equal(s.probs(), torch.full((T,), 1 / T, dtype=torch.float64)) or torch.allclose(s.probs(), torch.full((T,), 1 / T, dtype=torch.float64), rtol=1e-13)
    s.set_progress(1.0)
    tau = np.arange(T) / T
    e = ((tau - mu) / max(mu, 1 - mu)) ** 2  # Eq. (curriculum-mu), transcribed
    np.testing.assert_allclose(s.probs().numpy(), (1 - c_max * e) / (1 - c_max * e).sum(), rtol=1e-12)
    assert s.probs().argmax().item() == round(mu * T)


def test_curriculum_mu_resumes_bit_exactly():
    a = CurriculumSampler(1000, mu=0.3, stages=5)
    a.set_progress(0.61)
    b = CurriculumSampler(1000, mu=0.3, stages=5)
    b.load_state_dict(a.state_dict())
    draws = [s.sample(2048, generator=torch.Generator().manual_seed(4)) for s in (a, b)]
    assert torch.equal(a.probs(), b.probs()) and torch.equal(draws[0][0], draws[1][0]) and a.stage == b.stage == 3


@pytest.mark.parametrize("name", ["logit-normal", "mode", "cosmap"])
def test_unbiased_weights_of_a_fixed_density_are_computed_once(name, monkeypatch):
    "The importance weights 1/(T p_t) of a fixed density come from one table, not from p recomputed at every step."
    from minsnr.weighting import timestep_sampler
    sampler = timestep_sampler(name, 1000, unbiased=True)
    p = sampler.probs()
    calls = []
    monkeypatch.setattr(type(sampler), "probs", lambda self: calls.append(1) or p)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        t, w = sampler.sample(64, g)
        torch.testing.assert_close(w, (1 / (1000 * p[t])).float())
    assert len(calls) == 1
