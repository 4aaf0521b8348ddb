"""`minsnr.loss.DiffusionLoss` against Eq. (diffusion-loss) written out by hand, for every prediction target and every
weighting strategy; importance weights; the x0-space error it logs; zero terminal SNR; bad input.

The reference below does not call `loss_weight`: it takes each strategy's x0-space weight from a closed form and divides
by Appendix B's factor (1, SNR, SNR + 1) itself, so a wrong weight, target or factor in the package makes these fail.
"""
import math

import pytest
import torch
from torch import nn

from minsnr.loss import PREDICTIONS, DiffusionLoss, PredictEps, PredictV, PredictX0
from minsnr.schedule import cosine_schedule, linear_schedule, zero_terminal_snr
from minsnr.weighting import WEIGHTINGS, timestep_sampler

torch.set_num_threads(1)
GAMMA = {"max-snr": 1.0, "min-snr": 5.0, "soft-min-snr": 5.0, "p2": 1.0, "edm": 4.0, "sigmoid": 2.0}  # the documented defaults
X0_WEIGHT = {  # w(SNR) in x0 space, Hang et al. 2023 Sec. 3.4 and the sources cited in nbs/02_weighting.ipynb
    "const": lambda s, g: torch.ones_like(s),
    "snr": lambda s, g: s,
    "max-snr": lambda s, g: torch.maximum(s, torch.full_like(s, g)),
    "min-snr": lambda s, g: torch.minimum(s, torch.full_like(s, g)),
    "soft-min-snr": lambda s, g: 1 / (1 / s + 1 / g),
    "inv-snr": lambda s, g: 1 / s,
    "p2": lambda s, g: s / (1 + s) ** g,
    "edm": lambda s, g: s + g,
    "debiased": lambda s, g: s.sqrt(),  # Yu et al. 2024: ε weight 1/√SNR
    "sigmoid": lambda s, g: s / (1 + s * math.exp(-g)),  # Kingma & Gao 2023: ε weight sigmoid(b − log SNR), b = γ
}
FACTOR = {"x0": lambda s: torch.ones_like(s), "eps": lambda s: s, "v": lambda s: s + 1}  # Appendix B


class Net(nn.Module):
    "A small convolution: the loss only needs model(x, t, y)."

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x, t, y): return self.conv(x)


def direct(net, schedule, target, strategy, x0, t, noise, importance=None):
    "Eq. (diffusion-loss) computed from scratch, in float64, and the per-sample x0-space MSE."
    s = schedule.snr(t)
    a, sg = schedule.alpha(t).view(-1, 1, 1, 1), schedule.sigma(t).view(-1, 1, 1, 1)
    xt = (a * x0.double() + sg * noise.double()).float()
    pred = net(xt, t, None).double()
    z = {"x0": x0.double(), "eps": noise.double(), "v": a * noise.double() - sg * x0.double()}[target]
    mse = (pred - z).square().mean((1, 2, 3))
    w = X0_WEIGHT[strategy](s, GAMMA.get(strategy, math.nan)) / FACTOR[target](s)
    u = torch.ones_like(w) if importance is None else importance.double()
    x0_hat = {"x0": pred, "eps": (xt.double() - sg * pred) / a, "v": a * xt.double() - sg * pred}[target]
    return (u * w * mse).mean(), (x0_hat - x0.double()).square().mean((1, 2, 3))


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(12, 2, 6, 6, generator=g)
    noise = torch.randn(12, 2, 6, 6, generator=g)
    t = torch.cat([torch.tensor([0, 1, 999, 998]), torch.randint(0, 1000, (8,), generator=g)])  # both ends included
    return x0, t, noise


@pytest.mark.parametrize("target", ["x0", "eps", "v"])
@pytest.mark.parametrize("strategy", list(X0_WEIGHT))
def test_loss_equals_a_direct_computation(target, strategy, batch):
    x0, t, noise = batch
    schedule, net = cosine_schedule(), Net()
    out = DiffusionLoss(schedule, target, strategy)(net, x0, None, t, noise)
    want, x0_mse = direct(net, schedule, target, strategy, x0, t, noise)
    assert out.loss.shape == () and out.loss.isfinite()
    torch.testing.assert_close(out.loss.double(), want, rtol=2e-5, atol=0)
    torch.testing.assert_close(out.x0_mse.double(), x0_mse, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(out.t, t)
    assert not out.target_mse.requires_grad and not out.x0_mse.requires_grad


def test_every_strategy_is_covered():
    assert set(WEIGHTINGS) == set(X0_WEIGHT)


@pytest.mark.parametrize("target", ["x0", "eps", "v"])
def test_importance_weights_multiply_each_sample(target, batch):
    x0, t, noise = batch
    schedule, net = linear_schedule(), Net()
    u = torch.linspace(0.2, 3.0, len(t))
    out = DiffusionLoss(schedule, target, "min-snr")(net, x0, None, t, noise, u)
    want, _ = direct(net, schedule, target, "min-snr", x0, t, noise, u)
    torch.testing.assert_close(out.loss.double(), want, rtol=2e-5, atol=0)
    plain = DiffusionLoss(schedule, target, "min-snr")(net, x0, None, t, noise)
    assert not torch.isclose(out.loss, plain.loss)


def test_gamma_and_official_alias_reach_the_weight(batch):
    x0, t, noise = batch
    schedule, net = cosine_schedule(), Net()
    a = DiffusionLoss(schedule, "v", "vmin_snr_2")(net, x0, None, t, noise).loss
    b = DiffusionLoss(schedule, "v", "min-snr", gamma=2.0)(net, x0, None, t, noise).loss
    c = DiffusionLoss(schedule, "v", "min-snr")(net, x0, None, t, noise).loss  # γ = 5
    assert a == b and a != c


def test_predictions_and_their_factors():
    assert {n: type(p) for n, p in PREDICTIONS.items()} == {"x0": PredictX0, "eps": PredictEps, "v": PredictV}
    s = torch.tensor([0.0, 0.5, 4.0, math.inf], dtype=torch.float64)
    for name, p in PREDICTIONS.items():
        assert torch.equal(p.factor(s), FACTOR[name](s))


@pytest.mark.parametrize("target", ["x0", "eps", "v"])
def test_draw_is_reproducible_and_split_by_rows(target):
    "The same seed gives the same global batch, so any split of its rows sees the same t and noise."
    lf = DiffusionLoss(cosine_schedule(), target, "min-snr", sampler=timestep_sampler("logit-normal", unbiased=True))
    t1, u1, n1 = lf.draw(8, (2, 6, 6), torch.Generator().manual_seed(5))
    t2, u2, n2 = lf.draw(8, (2, 6, 6), torch.Generator().manual_seed(5))
    assert torch.equal(t1, t2) and torch.equal(u1, u2) and torch.equal(n1, n2)
    assert t1.shape == (8,) and n1.shape == (8, 2, 6, 6) and not torch.equal(u1, torch.ones(8))
    x0, net = torch.randn(8, 2, 6, 6), Net()
    whole = lf(net, x0, None, t1, n1, u1)
    halves = [lf(net, x0[r], None, t1[r], n1[r], u1[r]) for r in (slice(0, 4), slice(4, 8))]
    torch.testing.assert_close((halves[0].loss + halves[1].loss) / 2, whole.loss, rtol=1e-6, atol=0)


@pytest.mark.parametrize("target,strategy", [("eps", "min-snr"), ("x0", "min-snr"), ("v", "min-snr"), ("v", "snr"),
                                             ("x0", "const"), ("eps", "soft-min-snr")])
def test_zero_terminal_snr_keeps_the_loss_finite(target, strategy):
    "SNR = 0 at the last step: the weight has a finite limit there for these pairs, and the loss is finite."
    zt = zero_terminal_snr(cosine_schedule())
    x0, noise = torch.randn(4, 2, 6, 6), torch.randn(4, 2, 6, 6)
    t = torch.tensor([999, 999, 500, 0])
    lf = DiffusionLoss(zt, target, strategy)
    assert lf.weights(t).isfinite().all()
    out = lf(Net(), x0, None, t, noise)
    assert out.loss.isfinite() and out.target_mse.isfinite().all()
    # the x0-space error is undefined only for an ε-model at SNR = 0, and only there
    if target == "eps": assert out.x0_mse[:2].isnan().all() and out.x0_mse[2:].isfinite().all()
    else: assert out.x0_mse.isfinite().all()
    out.loss.backward()  # and so is its gradient


@pytest.mark.parametrize("make,message", [
    (lambda s: DiffusionLoss(s, "score"), "unknown prediction target 'score'; valid choices: 'x0', 'eps', 'v'"),
    (lambda s: DiffusionLoss(s, "x0", "minsnr"), "unknown loss weighting strategy 'minsnr'; valid choices: 'const'"),
    (lambda s: DiffusionLoss(s, "x0", "min-snr", gamma=0), "gamma must be a finite number > 0, got 0"),
    (lambda s: DiffusionLoss(s, "eps", "vmin_snr_5"), "is for a 'v'-prediction model, but target='eps' was given"),
    (lambda s: DiffusionLoss(s, "x0", sampler=timestep_sampler("uniform", 500)),
     "the timestep sampler has T=500 but the schedule has T=1000"),
    (lambda s: DiffusionLoss(s)(Net(), torch.zeros(2, 2, 6, 6), None, torch.tensor([1, 2]), torch.zeros(2, 2, 6, 5)),
     "noise must have the shape of x0, (2, 2, 6, 6), got (2, 2, 6, 5)"),
    (lambda s: DiffusionLoss(s)(Net(), torch.zeros(2, 2, 6, 6), None, torch.tensor([1, 2, 3]), torch.zeros(2, 2, 6, 6)),
     "t must hold one timestep per image, shape (2,), got (3,)"),
])
def test_bad_input(make, message):
    "Each bad argument is a one-line ValueError naming the value (and the valid choices)."
    with pytest.raises(ValueError) as err:
        make(cosine_schedule())
    assert message in str(err.value) and "\n" not in str(err.value)


# ---- EDM2's learned uncertainty and StableCascade's adaptive weighting --------------------------------------------

from minsnr.loss import AdaptiveLossWeight, LearnedUncertainty  # noqa: E402


def edm2_loss(weight, mse, logvar):
    "EDM2Loss written out from NVlabs/edm2 training/training_loop.py (commit 4bf8162f601bcc09472ce8a32dd0cbe8889dc8fc)."
    return (weight / logvar.exp()) * mse + logvar


def edm2_logvar(unc, sigma):
    "The logvar head of NVlabs/edm2 training/networks_edm2.py Precond (same commit): MPFourier of c_noise = ln σ / 4, then linear."
    c_noise = sigma.double().log() / 4
    y = (c_noise[:, None] * unc.freqs.double()[None] + unc.phases.double()).cos() * math.sqrt(2)
    return y @ unc.linear.weight.double()[0] + unc.linear.bias.double()[0]


@pytest.mark.parametrize("target", ["x0", "eps", "v"])
def test_uncertainty_loss_equals_edm2s_formula(target, batch):
    x0, t, noise = batch
    schedule, net = cosine_schedule(), Net()
    unc = LearnedUncertainty(channels=16, seed=4)
    with torch.no_grad():
        unc.linear.weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(2)); unc.linear.bias.fill_(-0.7)
    out = DiffusionLoss(schedule, target, "min-snr", uncertainty=unc)(net, x0, None, t, noise)
    s = schedule.snr(t)
    sigma = 1 / s.sqrt()  # EDM's σ of the VP timestep
    w = X0_WEIGHT["min-snr"](s, 5.0) / FACTOR[target](s)
    want = edm2_loss(w, out.target_mse.double(), edm2_logvar(unc, sigma)).mean()
    torch.testing.assert_close(out.loss.double(), want, rtol=2e-5, atol=1e-6)
    out.loss.backward()
    assert unc.linear.weight.grad.abs().sum() > 0 and unc.linear.bias.grad != 0


def test_uncertainty_starts_at_the_plain_loss_and_is_finite_at_both_ends(batch):
    x0, t, noise = batch
    zt, net = zero_terminal_snr(cosine_schedule()), Net()
    plain = DiffusionLoss(zt, "v", "min-snr")(net, x0, None, t, noise)
    unc = LearnedUncertainty()
    learned = DiffusionLoss(zt, "v", "min-snr", uncertainty=unc)(net, x0, None, t, noise)  # t holds 999: SNR = 0
    assert torch.equal(learned.loss, plain.loss)
    with torch.no_grad(): unc.linear.weight.fill_(0.1)
    nu = unc(torch.tensor([0.0, math.inf, 1.0]))
    assert nu.isfinite().all()
    out = DiffusionLoss(zt, "v", "min-snr", uncertainty=unc)(net, x0, None, t, noise)
    out.loss.backward()
    assert out.loss.isfinite() and unc.linear.weight.grad.isfinite().all()


def test_uncertainty_is_float32_under_autocast():
    unc = LearnedUncertainty()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert unc(torch.tensor([0.5, 2.0])).dtype == torch.float32


def stable_cascade_bucket(logsnr, buckets=300, lo=-10.0, hi=10.0):
    "Stability-AI/StableCascade gdf/loss_weights.py AdaptiveLossWeight (commit 7a7d341f729ccaa042920a1fac3e7b9326079aca)."
    return torch.searchsorted(torch.linspace(lo, hi, buckets - 1), logsnr)


def test_adaptive_buckets_and_weights_match_stable_cascade():
    lam = torch.cat([torch.tensor([-math.inf, -30.0, -10.0, 0.0, 9.99, 10.0, 30.0, math.inf]), torch.linspace(-12, 12, 101)])
    ada = AdaptiveLossWeight()
    assert torch.equal(ada.bucket(lam), stable_cascade_bucket(lam))
    # one sample per bucket: our per-bucket mean is StableCascade's update, bucket_losses*β + loss*(1−β)
    k = stable_cascade_bucket(lam)
    first = torch.unique(k, return_inverse=True)[1]
    keep = torch.tensor([int((first == j).nonzero()[0]) for j in range(int(first.max()) + 1)])
    lam, k = lam[keep], k[keep]
    theirs = torch.ones(300, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        loss = torch.rand(len(lam), generator=g, dtype=torch.float64) * 3
        theirs[k] = theirs[k] * 0.99 + loss * (1 - 0.99)
        ada.accumulate(lam, loss); ada.step()
    torch.testing.assert_close(ada.losses, theirs, rtol=1e-12, atol=0)
    torch.testing.assert_close(ada.weight(lam), (1 / theirs[k]).clamp(1e-7, 1e7).float())


def test_adaptive_step_is_the_mean_of_a_bucket_and_does_not_depend_on_the_split():
    lam, loss = torch.tensor([0.01, 0.02, 0.03, 5.0]), torch.tensor([1.0, 2.0, 6.0, 0.5])
    whole, split = AdaptiveLossWeight(), AdaptiveLossWeight()
    whole.accumulate(lam, loss); whole.step()
    split.accumulate(lam[:1], loss[:1]); split.accumulate(lam[1:], loss[1:]); split.step()
    assert torch.equal(whole.losses, split.losses)
    k = whole.bucket(torch.tensor([0.01, 5.0]))
    torch.testing.assert_close(whole.losses[k], torch.tensor([0.99 + 0.01 * 3.0, 0.99 + 0.01 * 0.5], dtype=torch.float64))
    assert int((whole.losses != 1).sum()) == 2
    # a reduction (the trainer's sum over processes) sees the pending sums and counts
    seen = []
    other = AdaptiveLossWeight(); other.accumulate(lam, loss); other.step(lambda p: seen.append(p.clone()) or p * 2)
    assert seen[0][1].sum() == 4 and torch.equal(other.losses, whole.losses)  # doubling sums and counts: same mean


def test_adaptive_state_round_trip_and_weight_clip():
    ada = AdaptiveLossWeight(buckets=4, weight_range=(0.5, 2.0))
    for _ in range(300): ada.accumulate(torch.tensor([-5.0, 5.0]), torch.tensor([1e4, 1e-4])); ada.step()
    w = ada.weight(torch.tensor([-5.0, 5.0, 12.0]))  # buckets 1 and 2 (boundaries −10, 0, 10) pushed to the clip; 3 untouched
    assert w.tolist() == pytest.approx([0.5, 2.0, 1.0])
    back = AdaptiveLossWeight(buckets=4, weight_range=(0.5, 2.0))
    back.load_state_dict(ada.state_dict())
    assert torch.equal(back.losses, ada.losses)
    with pytest.raises(ValueError, match="buckets"): AdaptiveLossWeight(buckets=5).load_state_dict(ada.state_dict())


@pytest.mark.parametrize("make,message", [
    (lambda: LearnedUncertainty(channels=0), "channels must be an integer ≥ 1, got 0"),
    (lambda: LearnedUncertainty(bandwidth=0), "bandwidth must be a finite number > 0, got 0"),
    (lambda: AdaptiveLossWeight(buckets=1), "buckets must be an integer ≥ 2, got 1"),
    (lambda: AdaptiveLossWeight(beta=1.0), "beta must be a number in [0, 1), got 1.0"),
    (lambda: AdaptiveLossWeight(logsnr_range=(3, -3)), "logsnr_range must be two finite numbers low < high, got (3, -3)"),
    (lambda: AdaptiveLossWeight(weight_range=(0, 1)), "weight_range must be two finite numbers 0 < low < high, got (0, 1)"),
    (lambda: DiffusionLoss(cosine_schedule(), uncertainty=LearnedUncertainty(), adaptive=AdaptiveLossWeight()),
     "uncertainty and adaptive both normalise the loss of each noise level: give one of them, not both"),
])
def test_bad_uncertainty_and_adaptive_arguments(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value) and "\n" not in str(err.value)
