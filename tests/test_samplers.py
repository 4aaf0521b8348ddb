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
