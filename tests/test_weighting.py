"""Every (strategy, target) pair of `minsnr.weighting.loss_weight` against a closed form written out independently.

The closed forms below are transcribed from the sources cited in `nbs/02_weighting.ipynb` and from Appendix B
(x0 → w, ε → w/SNR, v → w/(SNR+1)), each simplified by hand; they do not call the package, so changing a formula in
the package (or the Appendix B conversion) makes these tests fail.
"""
import math

import pytest
import torch

from minsnr.weighting import WEIGHTINGS, loss_weight, parse_weighting, timestep_sampler

inf = math.inf
G = {"max-snr": 1.0, "min-snr": 5.0, "soft-min-snr": 5.0, "p2": 1.0, "edm": 4.0, "sigmoid": 2.0}  # the documented default γ


def closed_form(name: str, target: str, s: torch.Tensor, g: float) -> torch.Tensor:
    "The weight of the target-space MSE, written out per pair."
    one = torch.ones_like(s)
    forms = {
        ("const", "x0"): lambda: one,
        ("const", "eps"): lambda: 1 / s,
        ("const", "v"): lambda: 1 / (s + 1),
        ("snr", "x0"): lambda: s,
        ("snr", "eps"): lambda: one,
        ("snr", "v"): lambda: s / (s + 1),
        ("max-snr", "x0"): lambda: torch.maximum(s, g * one),
        ("max-snr", "eps"): lambda: torch.maximum(one, g / s),
        ("max-snr", "v"): lambda: torch.maximum(s, g * one) / (s + 1),
        ("min-snr", "x0"): lambda: torch.minimum(s, g * one),
        ("min-snr", "eps"): lambda: torch.minimum(g / s, one),  # the paper, Sec. 4.2
        ("min-snr", "v"): lambda: torch.minimum(s, g * one) / (s + 1),
        ("soft-min-snr", "x0"): lambda: 1 / (1 / s + 1 / g),
        ("soft-min-snr", "eps"): lambda: g / (s + g),
        ("soft-min-snr", "v"): lambda: g * s / ((s + g) * (s + 1)),
        ("inv-snr", "x0"): lambda: 1 / s,
        ("inv-snr", "eps"): lambda: 1 / s**2,
        ("inv-snr", "v"): lambda: 1 / (s * (s + 1)),
        ("p2", "x0"): lambda: s / (1 + s) ** g,
        ("p2", "eps"): lambda: 1 / (1 + s) ** g,  # Choi et al. 2022: λ_t / (k + SNR)^γ on L_simple
        ("p2", "v"): lambda: s / (1 + s) ** (g + 1),
        ("edm", "x0"): lambda: s + g,
        ("edm", "eps"): lambda: 1 + g / s,
        ("edm", "v"): lambda: (s + g) / (s + 1),
        # Yu et al. 2024 (arXiv 2310.08442): the ε loss weighted by 1/√SNR; x0 = ε weight · SNR, v = x0 weight / (SNR + 1)
        ("debiased", "eps"): lambda: 1 / s.sqrt(),
        ("debiased", "x0"): lambda: s / s.sqrt(),
        ("debiased", "v"): lambda: s / (s.sqrt() * (s + 1)),
        # Kingma & Gao 2023 (arXiv 2303.00848): the ε loss weighted by w(λ) = sigmoid(b − λ) = 1/(1 + e^(λ − b)), λ = log SNR
        ("sigmoid", "eps"): lambda: 1 / (1 + torch.exp(torch.log(s) - g)),
        ("sigmoid", "x0"): lambda: s / (1 + torch.exp(torch.log(s) - g)),
        ("sigmoid", "v"): lambda: s / ((1 + torch.exp(torch.log(s) - g)) * (s + 1)),
    }
    return forms[name, target]()


# the exact limits at SNR = 0 and SNR = ∞ of each closed form, worked out by hand (default γ)
LIMITS = {
    "const": {"x0": (1, 1), "eps": (inf, 0), "v": (1, 0)},
    "snr": {"x0": (0, inf), "eps": (1, 1), "v": (0, 1)},
    "max-snr": {"x0": (1, inf), "eps": (inf, 1), "v": (1, 1)},
    "min-snr": {"x0": (0, 5), "eps": (1, 0), "v": (0, 0)},
    "soft-min-snr": {"x0": (0, 5), "eps": (1, 0), "v": (0, 0)},
    "inv-snr": {"x0": (inf, 0), "eps": (inf, 0), "v": (inf, 0)},
    "p2": {"x0": (0, 1), "eps": (1, 0), "v": (0, 0)},
    "edm": {"x0": (4, inf), "eps": (inf, 1), "v": (4, 1)},
    "debiased": {"x0": (0, inf), "eps": (inf, 0), "v": (0, 0)},  # √s, 1/√s, √s/(s+1)
    "sigmoid": {"x0": (0, math.exp(2.0)), "eps": (1, 0), "v": (0, 0)},  # s/(1 + s e^-2) → e^2 at s = ∞
}
PAIRS = [(n, t) for n in LIMITS for t in ("x0", "eps", "v")]


def test_every_strategy_is_covered():
    assert set(WEIGHTINGS) == set(LIMITS)
    assert {n for n, w in WEIGHTINGS.items() if w.default_gamma is not None} == set(G)
    assert all(WEIGHTINGS[n].default_gamma == g for n, g in G.items())


@pytest.fixture(scope="module")
def random_snr():
    g = torch.Generator().manual_seed(1234)
    log10 = torch.empty(20_000, dtype=torch.float64).uniform_(-6, 6, generator=g)  # SNR from 1e-6 to 1e6
    return torch.cat([10**log10, torch.tensor([1e-6, 1.0, 5.0, 1e6], dtype=torch.float64)])


@pytest.mark.parametrize("name,target", PAIRS)
def test_closed_form_over_random_snr(name, target, random_snr):
    got = loss_weight(random_snr, name, target)
    want = closed_form(name, target, random_snr, G.get(name, float("nan")))
    assert got.dtype == torch.float64 and got.shape == random_snr.shape
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name,target", [(n, t) for n, t in PAIRS if n in G])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.5, 20.0])
def test_closed_form_other_gammas(name, target, gamma, random_snr):
    torch.testing.assert_close(loss_weight(random_snr, name, target, gamma=gamma),
                               closed_form(name, target, random_snr, gamma), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name,target", PAIRS)
def test_limits_at_zero_and_infinity(name, target):
    got = loss_weight(torch.tensor([0.0, inf], dtype=torch.float64), name, target)
    assert not got.isnan().any()
    assert tuple(got.tolist()) == tuple(float(x) for x in LIMITS[name][target])


@pytest.mark.parametrize("name,target", PAIRS)
def test_limits_continue_the_formula(name, target):
    "The declared limit is where the formula goes: finite ones closely, 0 and ∞ by becoming tiny / huge."
    near = loss_weight(torch.tensor([1e-14, 1e14], dtype=torch.float64), name, target).tolist()
    for got, lim in zip(near, LIMITS[name][target]):
        if lim == inf: assert got > 1e6
        elif lim == 0: assert got < 1e-6
        else: assert got == pytest.approx(lim, rel=1e-6)


def test_sigmoid_ceiling_is_e_to_the_gamma():
    "Kingma & Gao's weight in x0 space, SNR·sigmoid(b − log SNR), levels off at e^b (b = γ)."
    for b in (0.5, 2.0, 5.0):
        assert loss_weight(torch.tensor([inf], dtype=torch.float64), "sigmoid", "x0", gamma=b).item() == math.exp(b)


def test_debiased_matches_stablecascade():
    "StableCascade's DebiasedLossWeight, 1/sqrt(exp(logSNR)) on the ε loss (their EpsilonTarget), equals our ε weight."
    # transcribed from Stability-AI/StableCascade gdf/loss_weights.py (commit 7a7d341f729ccaa042920a1fac3e7b9326079aca)
    log_snr = torch.linspace(-12, 12, 97, dtype=torch.float64)
    theirs = 1 / log_snr.exp().sqrt()
    torch.testing.assert_close(loss_weight(log_snr.exp(), "debiased", "eps"), theirs, rtol=1e-12, atol=0)


def test_sigmoid_matches_bayesflow():
    "BayesFlow's sigmoid weighting of the noise-prediction loss, sigmoid(-log_snr + 2), equals our ε weight at the default γ."
    # transcribed from bayesflow-org/bayesflow bayesflow/networks/diffusion_model/schedules/noise_schedule.py
    # (commit 55cba3eaa1039e0e3de18f1a8d3caf2571f8d874), NoiseSchedule.get_weights_for_snr, "based on Kingma et al. (2023)"
    log_snr = torch.linspace(-15, 15, 121, dtype=torch.float64)
    theirs = torch.sigmoid(-log_snr + 2)
    torch.testing.assert_close(loss_weight(log_snr.exp(), "sigmoid", "eps"), theirs, rtol=1e-12, atol=0)


def test_stablecascade_sigmoid_is_another_function():
    "StableCascade's SigmoidLossWeight, sigmoid(logSNR) on ε, rises with log SNR; Kingma & Gao's falls (the docs say so)."
    # Stability-AI/StableCascade gdf/loss_weights.py (commit 7a7d341f729ccaa042920a1fac3e7b9326079aca), s = 1
    log_snr = torch.linspace(-6, 6, 13, dtype=torch.float64)
    theirs, ours = log_snr.sigmoid(), loss_weight(log_snr.exp(), "sigmoid", "eps", gamma=2.0)
    assert (theirs.diff() > 0).all() and (ours.diff() < 0).all()


def test_p2_limit_depends_on_gamma():
    "P2's x0 weight SNR/(1+SNR)^γ tends to 0, 1 or ∞ at SNR = ∞ for γ > 1, = 1, < 1."
    ends = torch.tensor([inf])
    assert [loss_weight(ends, "p2", "x0", gamma=g).item() for g in (2.0, 1.0, 0.5)] == [0.0, 1.0, inf]


@pytest.mark.parametrize("name", list(LIMITS))
def test_targets_are_related_by_appendix_b(name, random_snr):
    "w_eps · SNR = w_x0 = w_v · (SNR + 1) for every strategy (finite SNR)."
    w = {t: loss_weight(random_snr, name, t) for t in ("x0", "eps", "v")}
    torch.testing.assert_close(w["eps"] * random_snr, w["x0"], rtol=1e-12, atol=0)
    torch.testing.assert_close(w["v"] * (random_snr + 1), w["x0"], rtol=1e-12, atol=0)


def test_min_snr_is_the_minimum_of_its_neighbours(random_snr):
    "min-SNR-γ never exceeds SNR or γ; max-SNR-γ never falls below either; soft-min lies below min."
    mn, mx = loss_weight(random_snr, "min-snr", "x0"), loss_weight(random_snr, "max-snr", "x0", gamma=5.0)
    soft = loss_weight(random_snr, "soft-min-snr", "x0")
    assert (mn <= random_snr).all() and (mn <= 5).all() and (mx >= random_snr).all() and (mx >= 5).all()
    assert (soft <= mn).all() and (soft >= mn / 2).all()


def test_dtype_and_device_follow_the_input():
    s32 = torch.tensor([0.5, 5.0, inf], dtype=torch.float32)
    assert loss_weight(s32, "min-snr", "eps").dtype == torch.float32
    assert loss_weight(torch.tensor([1, 2]), "min-snr", "eps").dtype == torch.float64  # integers: float64
    assert loss_weight(2.0, "min-snr", "x0").item() == 2.0 and loss_weight(2.0, "min-snr", "x0").ndim == 0
    assert loss_weight(torch.ones(2, 3), "snr", "v").shape == (2, 3)


@pytest.mark.parametrize("alias,target,expected", [
    ("min_snr_5", "x0", ("min-snr", 5.0, "x0")),
    ("min_snr_5", "eps", ("min-snr", 5.0, "eps")),
    ("min_snr_5", "v", ("min-snr", 5.0, "v")),
    ("vmin_snr_5", "v", ("min-snr", 5.0, "v")),
    ("vmin_snr_10", None, ("min-snr", 10.0, "v")),
    ("max_snr_1", "x0", ("max-snr", 1.0, "x0")),
    ("trunc_snr", "x0", ("max-snr", 1.0, "x0")),
    ("constant", "eps", ("const", None, "eps")),
    ("inv_snr", "x0", ("inv-snr", None, "x0")),
    ("snr", "epsilon", ("snr", None, "eps")),
    ("min-snr-20", "v_prediction", ("min-snr", 20.0, "v")),
    ("soft_min_snr", "sample", ("soft-min-snr", 5.0, "x0")),
])
def test_official_aliases(alias, target, expected):
    weighting, gamma, tgt = parse_weighting(alias, target)
    assert (weighting.name, gamma, tgt) == expected


def test_alias_weight_equals_canonical_weight(random_snr):
    torch.testing.assert_close(loss_weight(random_snr, "vmin_snr_5", "v"), loss_weight(random_snr, "min-snr", "v", 5.0))
    torch.testing.assert_close(loss_weight(random_snr, "trunc_snr", "eps"), loss_weight(random_snr, "max-snr", "eps", 1.0))
    torch.testing.assert_close(loss_weight(random_snr, "min_snr_1", "x0"), loss_weight(random_snr, "min-snr", "x0", 1.0))


@pytest.mark.parametrize("kwargs,message", [
    (dict(strategy="min_snr"), None),  # fine: the paper's default γ
    (dict(strategy="minsnr"), "unknown loss weighting strategy 'minsnr'; valid choices: 'const', 'snr'"),
    (dict(strategy="p3"), "'min_snr_<γ>', 'max_snr_<γ>', 'vmin_snr_<γ>'"),
    (dict(strategy=5), "strategy must be a string"),
    (dict(target="noise_pred"), "unknown prediction target 'noise_pred'; valid choices: 'x0', 'eps', 'v'"),
    (dict(gamma=0.0), "gamma must be a finite number > 0, got 0.0"),
    (dict(gamma=-3), "gamma must be a finite number > 0, got -3"),
    (dict(gamma=float("nan")), "got nan"),
    (dict(gamma=float("inf")), "got inf"),
    (dict(gamma="5"), "got '5'"),
    (dict(strategy="vmin_snr_5", target="x0"), "is for a 'v'-prediction model, but target='x0'"),
    (dict(strategy="min_snr_5", gamma=10.0), "sets γ = 5, but gamma=10"),
    (dict(strategy="const_3"), "strategy 'const' has no γ"),
])
def test_bad_strategy_target_gamma(kwargs, message):
    args = dict(snr=torch.tensor([0.5, 2.0]), strategy="min-snr", target="eps") | kwargs
    if message is None:
        loss_weight(**args)
        return
    with pytest.raises(ValueError) as err:
        loss_weight(**args)
    assert message in str(err.value)


@pytest.mark.parametrize("snr,message", [
    (torch.tensor([1.0, -0.5]), "snr must be ≥ 0 and not NaN, got -0.5 at index (1,)"),
    (torch.tensor([[1.0, 2.0], [float("nan"), 3.0]]), "got nan at index (1, 0) (1 bad of 4)"),
    (-2.0, "got -2.0"),
    (float("-inf"), "got -inf"),
    (torch.tensor([True]), "snr must be real"),
])
def test_bad_snr(snr, message):
    with pytest.raises(ValueError) as err:
        loss_weight(snr, "min-snr", "x0")
    assert message in str(err.value)


def test_official_min_snr_v_bug_is_not_reproduced():
    "The official code gives a v model named min_snr_5 the ε weight min(SNR,5)/SNR; we give min(SNR,5)/(SNR+1)."
    s = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64)
    ours = loss_weight(s, "min_snr_5", "v")
    assert not torch.allclose(ours, torch.minimum(s, torch.full_like(s, 5.0)) / s)
    torch.testing.assert_close(ours, torch.minimum(s, torch.full_like(s, 5.0)) / (s + 1))


@pytest.mark.parametrize("strategy,kwargs,message", [
    ("minsnr", {}, "unknown loss weighting strategy 'minsnr'; valid choices: 'const', 'snr', 'max-snr', 'min-snr'"),
    ("min-snr-gamma-5", {}, "unknown loss weighting strategy 'min-snr-gamma-5'"),
    ("vmax_snr_5", {}, "unknown loss weighting strategy 'vmax_snr_5'"),
    ("vmin_snr_5", dict(target="eps"), "strategy 'vmin_snr_5' is for a 'v'-prediction model, but target='eps' was given"),
    ("min_snr_5", dict(gamma=10), "strategy 'min_snr_5' sets γ = 5, but gamma=10 was given"),
    ("min_snr_0", {}, "γ in 'min_snr_0' must be a finite number > 0, got 0.0"),
    ("snr_5", {}, "strategy 'snr' has no γ, but 'snr_5' names one"),
    ("min-snr", dict(gamma=-1), "gamma must be a finite number > 0, got -1"),
    ("min-snr", dict(gamma=float("inf")), "gamma must be a finite number > 0, got inf"),
    ("min-snr", dict(gamma=True), "gamma must be a finite number > 0, got True"),
    ("min-snr", dict(target="epsilon_theta"), "unknown prediction target 'epsilon_theta'; valid choices: 'x0', 'eps', 'v'"),
])
def test_parse_weighting_bad_input(strategy, kwargs, message):
    "Each bad name, γ or target is a one-line ValueError naming the value (and the valid choices)."
    with pytest.raises(ValueError) as err:
        parse_weighting(strategy, **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("make,message", [
    (lambda: timestep_sampler("lognorm"), "unknown timestep sampler 'lognorm'; valid choices: 'uniform', 'logit-normal', 'loss-second-moment', 'curriculum'"),
    (lambda: timestep_sampler("uniform", T=1), "T must be an integer ≥ 2, got 1"),
    (lambda: timestep_sampler("uniform").sample(0), "n must be an integer ≥ 1, got 0"),
    (lambda: timestep_sampler("uniform").sample(2.0), "n must be an integer ≥ 1, got 2.0"),
    (lambda: timestep_sampler("uniform", low=200, high=100), "need integers 0 ≤ low < high ≤ T=1000, got low=200, high=100"),
    (lambda: timestep_sampler("logit-normal", std=0), "std must be a finite number > 0, got 0"),
    (lambda: timestep_sampler("logit-normal", mean=float("inf")), "mean must be finite, got inf"),
    (lambda: timestep_sampler("loss-second-moment", history=0), "history must be an integer ≥ 1, got 0"),
    (lambda: timestep_sampler("loss-second-moment", uniform_prob=-0.1), "uniform_prob must be in [0, 1], got -0.1"),
    (lambda: timestep_sampler("loss-second-moment", T=100).update(torch.tensor([1, 2]), torch.tensor([0.5])), "got 2 timesteps but 1 losses"),
    (lambda: timestep_sampler("loss-second-moment", T=100).update(torch.tensor([100]), torch.tensor([0.5])), "timesteps must be in [0, 100), got 100…100"),
    (lambda: timestep_sampler("loss-second-moment", T=100).update(torch.tensor([3]), torch.tensor([float("inf")])), "losses must be finite, got inf"),
    (lambda: timestep_sampler("curriculum").set_progress(1.5), "progress must be in [0, 1], got 1.5"),
    (lambda: timestep_sampler("curriculum", easy="hard"), "easy must be one of 'noisy', 'clean', got 'hard'"),
    (lambda: timestep_sampler("curriculum", max_drop=1.0), "max_drop must be in [0, 1), got 1.0"),
    (lambda: timestep_sampler("curriculum", stages=0), "stages must be an integer ≥ 1, got 0"),
    (lambda: timestep_sampler("curriculum", schedule="sqrt"), "unknown schedule 'sqrt'"),
    (lambda: timestep_sampler("curriculum", mu=1.5), "mu must be in [0, 1], got 1.5"),
    (lambda: timestep_sampler("curriculum", mu=0.3, easy="noisy"), "give easy or mu, not both"),
    (lambda: timestep_sampler("mode", scale=1.8), "scale must be in [-1, 2/(π - 2) = 1.752] (f must be monotone), got 1.8"),
    (lambda: timestep_sampler("mode", scale=-1.5), "scale must be in [-1, 2/(π - 2) = 1.752]"),
])
def test_timestep_sampler_bad_input(make, message):
    "Each bad option of a timestep sampler is a one-line ValueError naming the value (and the valid choices)."
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value) and "\n" not in str(err.value)
