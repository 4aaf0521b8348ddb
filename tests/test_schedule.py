"""Properties of `minsnr.schedule` that the notebook's examples do not pin down, checked against brute-force oracles."""
import math

import pytest
import torch

from minsnr.schedule import (VPSchedule, cosine_betas, cosine_schedule, get_schedule, linear_betas, linear_schedule,
                             zero_terminal_snr)

# ᾱ_0 = 1 (SNR(0) = ∞, σ_EDM(0) = 0): the cosine schedule with a noiseless step put in front
NOISELESS = VPSchedule(torch.cat([torch.ones(1, dtype=torch.float64), cosine_schedule().alphas_cumprod[:-1]]), "noiseless")
SCHEDULES = [cosine_schedule(), linear_schedule(), zero_terminal_snr(cosine_schedule()), cosine_schedule(T=50),
             NOISELESS, zero_terminal_snr(NOISELESS)]
# tiny schedules with an infinite end or two, where every segment is near one
TINY = [VPSchedule(torch.tensor(ac, dtype=torch.float64), name) for name, ac in
        [("1-.9-.5-.1", [1.0, 0.9, 0.5, 0.1]), ("1-.5-0", [1.0, 0.5, 0.0]), ("1-0", [1.0, 0.0]), (".9-0", [0.9, 0.0])]]


def test_cosine_closed_form():
    "Without the 0.999 clip, ᾱ_t = f((t+1)/T)/f(0): the clip only acts on the last steps."
    T, s = 1000, 0.008
    f = lambda u: math.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    want = torch.tensor([f((t + 1) / T) / f(0) for t in range(T)], dtype=torch.float64)
    got = cosine_schedule().alphas_cumprod
    torch.testing.assert_close(got[:990], want[:990], rtol=1e-12, atol=0)
    assert cosine_schedule().betas.max() == pytest.approx(0.999)


@pytest.mark.parametrize("beta_schedule,ours", [("squaredcos_cap_v2", cosine_schedule), ("linear", linear_schedule)])
def test_matches_diffusers(beta_schedule, ours):
    from diffusers import DDPMScheduler
    theirs = DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule).alphas_cumprod.double()
    assert (ours().alphas_cumprod - theirs).abs().max() < 1e-6  # float32 cumprod on their side


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: f"{s.name}-{s.T}")
def test_fractional_timesteps_interpolate_monotonically(schedule):
    t = torch.linspace(0, schedule.T - 1, 7919, dtype=torch.float64)
    lam = schedule.logsnr(t)
    assert not lam.isnan().any()
    assert (lam[1:] <= lam[:-1]).all()
    lo = t.floor().long().clamp(max=schedule.T - 2)
    between = (lam <= schedule.logsnr_grid[lo]) & (lam >= schedule.logsnr_grid[lo + 1])
    assert between.all()
    a, s = schedule.alpha(t), schedule.sigma(t)
    torch.testing.assert_close(a**2 + s**2, torch.ones_like(a), rtol=0, atol=1e-14)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: f"{s.name}-{s.T}")
def test_sigma_round_trip(schedule):
    g = torch.Generator().manual_seed(0)
    # with an infinite top end (zero terminal SNR) the last segment is degenerate: stop at the last finite σ
    top = schedule.sigma_edm_max if math.isfinite(schedule.sigma_edm_max) else schedule.sigma_edm(schedule.T - 2).item()
    # likewise with σ = 0 at the bottom (ᾱ_0 = 1): start at the first non-zero σ
    bottom = schedule.sigma_edm_min if schedule.sigma_edm_min > 0 else schedule.sigma_edm(1).item()
    lo, hi = math.log(bottom), math.log(top)
    sigma = torch.empty(5000, dtype=torch.float64).uniform_(lo, hi, generator=g).exp()
    t = schedule.t_from_sigma_edm(sigma)
    torch.testing.assert_close(schedule.sigma_edm(t), sigma, rtol=1e-10, atol=0)


@pytest.mark.parametrize("schedule", SCHEDULES[:2] + SCHEDULES[4:], ids=lambda s: s.name)
def test_nearest_matches_brute_force(schedule):
    "Nearest in σ, as the official sampler does with cdist(σ, σ_grid).argmin()."
    g = torch.Generator().manual_seed(1)
    sigma = torch.empty(3000, dtype=torch.float64).uniform_(-6, 5, generator=g).exp()
    grid = schedule.sigma_edm(torch.arange(schedule.T))
    want = (sigma[:, None] - grid[None, :]).abs().argmin(1)
    got = schedule.t_from_sigma_edm(sigma, mode="nearest")
    assert got.dtype == torch.int64
    assert (got == want).all()


@pytest.mark.parametrize("schedule", SCHEDULES + TINY, ids=lambda s: f"{s.name}-{s.T}")
def test_every_sigma_maps_to_a_finite_timestep(schedule):
    "Any σ ≥ 0, at either end of any schedule: a timestep in [0, T−1], non-decreasing in σ, 0 at σ = 0 and T−1 at σ = ∞."
    grid = schedule.sigma_edm(torch.arange(schedule.T))
    positive = grid[grid.isfinite() & (grid > 0)]
    sigma = torch.cat([torch.tensor([0.0, 1e-300, 1e-12, 1e-3, 1.0, 1e3, 1e300, math.inf], dtype=torch.float64),
                       grid, (positive[1:] * positive[:-1]).sqrt(), (positive[:1, None] * torch.tensor([0.1, 0.5, 0.9])).flatten()]).sort().values
    got = {}
    for mode in ("interp", "nearest"):
        t = got[mode] = schedule.t_from_sigma_edm(sigma, mode=mode)
        assert not t.isnan().any(), sigma[t.isnan()]
        assert (t >= 0).all() and (t <= schedule.T - 1).all() and (t.diff() >= 0).all()
        assert t[0] == 0 and t[-1] == schedule.T - 1
    assert ((got["nearest"] - got["interp"]).abs() <= 1).all()


@pytest.mark.parametrize("schedule", [NOISELESS, zero_terminal_snr(NOISELESS)] + TINY[:3], ids=lambda s: f"{s.name}-{s.T}")
def test_noiseless_first_segment_interpolates_sigma(schedule):
    "With ᾱ_0 = 1, σ in [0, σ_EDM(1)] maps to t = σ/σ_EDM(1), which rounds to the timestep nearest in σ."
    s1 = schedule.sigma_edm(1).item()
    sigma = torch.linspace(0, s1, 102, dtype=torch.float64) if math.isfinite(s1) else torch.tensor([0.0, 1.0, 1e300], dtype=torch.float64)
    t = schedule.t_from_sigma_edm(sigma)
    torch.testing.assert_close(t, sigma / s1, rtol=1e-14, atol=0)
    grid = schedule.sigma_edm(torch.arange(schedule.T))
    nearest = (sigma[:, None] - grid[None, :]).abs().argmin(1)
    assert (schedule.t_from_sigma_edm(sigma, mode="nearest") == nearest).all() and (t.round().long() == nearest).all()


def test_sigma_range_of_schedules_with_infinite_ends():
    assert NOISELESS.sigma_edm_min == 0 and math.isfinite(NOISELESS.sigma_edm_max) and NOISELESS.snr(0).item() == math.inf
    both = zero_terminal_snr(NOISELESS)
    assert (both.sigma_edm_min, both.sigma_edm_max) == (0.0, math.inf)
    assert "σ_edm ∈ [0, inf]" in repr(both)
    assert both.t_from_sigma_edm(torch.tensor([0.0, math.inf])).tolist() == [0.0, both.T - 1]


def test_zero_terminal_snr_ends():
    z = zero_terminal_snr(linear_schedule())
    assert z.snr(z.T - 1).item() == 0 and z.sigma(z.T - 1).item() == 1 and z.alpha(z.T - 1).item() == 0
    assert z.sigma_edm_max == math.inf
    assert z.t_from_sigma_edm(torch.tensor([1e6, math.inf])).tolist() == [z.T - 2, z.T - 1]


def test_integer_and_float_timesteps_agree():
    s = cosine_schedule()
    t = torch.arange(0, 1000, 37)
    for method in ("alpha", "sigma", "snr", "logsnr", "sigma_edm"):
        torch.testing.assert_close(getattr(s, method)(t), getattr(s, method)(t.double()), rtol=0, atol=0)
    assert s.snr(5).item() == s.snr(torch.tensor(5)).item() == s.snr(5.0).item()


def test_results_follow_the_device_and_are_float64():
    s = cosine_schedule()
    out = s.sigma(torch.tensor([1.5, 2.0], dtype=torch.float32))
    assert out.dtype == torch.float64 and out.device == torch.device("cpu")


@pytest.mark.parametrize("call,message", [
    (lambda s: s.snr(-1), "timestep -1 is outside the schedule's range [0, 999]"),
    (lambda s: s.alpha(999.5), "timestep 999.5 is outside"),
    (lambda s: s.sigma(torch.tensor([1.0, float("nan")])), "timestep nan"),
    (lambda s: s.snr(True), "timestep must be a number"),
    (lambda s: s.t_from_sigma_edm(float("nan")), "sigma must be ≥ 0 and not NaN"),
    (lambda s: s.t_from_sigma_edm(1.0, mode="floor"), "mode must be one of 'interp', 'nearest', got 'floor'"),
    (lambda s: get_schedule("quadratic"), "unknown schedule 'quadratic'; valid choices: 'cosine', 'linear'"),
    (lambda s: cosine_schedule(T=0), "T must be an integer ≥ 2, got 0"),
    (lambda s: linear_betas(10.0), "T must be an integer ≥ 2, got 10.0"),
    (lambda s: cosine_betas(True), "T must be an integer ≥ 2, got True"),
    (lambda s: s.snr(torch.tensor([3.0, -0.5])), "timestep -0.5 is outside the schedule's range [0, 999]"),
    (lambda s: s.snr(torch.tensor([1 + 1j])), "timesteps must be integer or real"),
    (lambda s: s.t_from_sigma_edm(-1.0), "sigma must be ≥ 0 and not NaN, got -1.0"),
    (lambda s: get_schedule("sqrt", 10), "valid choices: 'cosine', 'linear', 'cosine-zt', 'linear-zt'"),
    (lambda s: VPSchedule(torch.tensor([1.2, 0.5])), "alphas_cumprod must lie in [0, 1], found 1.2"),
    (lambda s: VPSchedule(torch.tensor([0.9, 0.9])), "strictly decreasing"),
    (lambda s: VPSchedule(torch.tensor([0.9, 0.95, 0.5], dtype=torch.float64)), "strictly decreasing, but ᾱ[0]=0.9 ≤ ᾱ[1]=0.95"),
    (lambda s: VPSchedule(torch.tensor([0.9, float("nan")])), "alphas_cumprod must lie in [0, 1], found nan"),
    (lambda s: VPSchedule(torch.ones(2, 2)), "must be 1-D"),
])
def test_bad_input(call, message):
    "Each bad argument is a ValueError whose one-line message names the value (and the valid choices)."
    with pytest.raises(ValueError) as err:
        call(cosine_schedule())
    assert message in str(err.value)
