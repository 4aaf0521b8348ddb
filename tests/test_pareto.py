"""minsnr.pareto: the Frank-Wolfe min-norm solver against an independent one, the optimality (KKT) conditions that
Theorem 1 rests on, invariances of Eq. 11, UGD, and bad inputs."""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from minsnr.pareto import (bin_edges, min_norm_weights, pareto_objective, per_bin_gradients, strategy_bin_weights,
                           ugd_weights)
from minsnr.schedule import cosine_schedule, linear_schedule

torch.set_num_threads(1)
SIZES = [(2, 5), (3, 1), (5, 20), (10, 10), (10, 200), (12, 4), (30, 3), (8, 1000)]


def random_gradients(K, P, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(K, P, generator=g, dtype=torch.float64) + shift


def slsqp(G, lam=0.0):
    "An independent solver: SciPy's SLSQP on the simplex, from several starting points."
    A = (G @ G.T).numpy() + lam * np.eye(len(G))
    K, best = len(A), None
    starts = [np.full(K, 1 / K)] + [np.eye(K)[k] * 0.9 + 0.1 / K for k in range(min(K, 3))]
    for w0 in starts:
        res = minimize(lambda w: w @ A @ w, w0, jac=lambda w: 2 * A @ w, method="SLSQP", bounds=[(0, 1)] * K,
                       constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}], options={"ftol": 1e-15, "maxiter": 2000})
        w = np.clip(res.x, 0, None)
        w /= w.sum()
        if best is None or w @ A @ w < best @ A @ best: best = w
    return torch.from_numpy(best), float(best @ A @ best)


@pytest.mark.parametrize("K,P", SIZES)
@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_min_norm_weights_match_an_independent_solver(K, P, shift):
    G = random_gradients(K, P, seed=K * 1000 + P, shift=shift)
    sol = min_norm_weights(G)
    w_ref, f_ref = slsqp(G)
    scale = G.square().sum(1).max().item()
    assert sol.objective <= f_ref + 1e-9 * scale, (sol.objective, f_ref)
    assert sol.objective >= f_ref - sol.gap - 1e-12 * scale  # the gap bounds the distance to the optimum
    # the min-norm point of the convex hull is unique even where w* is not
    torch.testing.assert_close(-sol.delta, G.T @ w_ref, atol=1e-4 * math.sqrt(scale), rtol=0)
    assert sol.weights.min() >= 0 and abs(sol.weights.sum() - 1) < 1e-12


@pytest.mark.parametrize("K,P", SIZES)
def test_kkt_conditions_of_the_min_norm_point(K, P):
    "⟨g_t, Gᵀw*⟩ ≥ ‖δ*‖² for every t, with equality on the support of w* (Appendix A)."
    G = random_gradients(K, P, seed=7 * K + P, shift=0.5)
    sol = min_norm_weights(G)
    scale = G.square().sum(1).max().item()
    inner = G @ -sol.delta  # ⟨g_t, Σ w*_s g_s⟩
    norm_sq = sol.delta.square().sum()
    assert (inner >= norm_sq - 1e-9 * scale).all(), (inner - norm_sq).min()
    support = sol.weights > 1e-9
    assert support.any()
    torch.testing.assert_close(inner[support], norm_sq.expand(int(support.sum())), atol=1e-6 * scale, rtol=0)
    # Theorem 1: δ* is a common descent direction, ⟨δ*, g_t⟩ ≤ −‖δ*‖² ≤ 0
    assert (G @ sol.delta <= -norm_sq + 1e-9 * scale).all()


def test_plain_frank_wolfe_agrees_with_the_min_norm_point_algorithm():
    for seed in range(5):
        G = random_gradients(6, 30, seed)
        plain = min_norm_weights(G, method="frank-wolfe", tol=1e-6, max_iters=100_000)
        exact = min_norm_weights(G)
        assert exact.gap <= 1e-12 * G.square().sum(1).max()
        assert -1e-12 <= plain.objective - exact.objective <= plain.gap + 1e-12


def test_min_norm_point_on_hard_cases():
    "Sets with 0 on or near the boundary of the hull, where plain Frank-Wolfe zigzags for thousands of iterations."
    gen = torch.Generator().manual_seed(0)
    for _ in range(300):
        K, P = [(6, 5), (12, 6), (20, 5), (8, 2)][int(torch.randint(4, (1,), generator=gen))]
        G = torch.randn(K, P, generator=gen, dtype=torch.float64)
        sol = min_norm_weights(G)
        scale = G.square().sum(1).max().item()
        assert sol.gap <= 1e-12 * scale and sol.iterations < 200
        assert (G @ -sol.delta >= sol.delta.square().sum() - 1e-12 * scale).all()


@pytest.mark.parametrize("lam", [0.1, 1.0, 10.0])
def test_regularised_problem_and_ugd(lam):
    "λ > 0: a unique minimiser, found by Frank-Wolfe on GGᵀ + λI, SLSQP and UGD alike."
    G = random_gradients(8, 25, seed=int(lam * 10), shift=0.3)
    fw, (w_ref, f_ref), w_ugd = min_norm_weights(G, lam), slsqp(G, lam), ugd_weights(G, lam, steps=3000)
    assert abs(fw.objective - f_ref) <= 1e-8 * f_ref
    torch.testing.assert_close(fw.weights, w_ref, atol=1e-4, rtol=0)
    assert pareto_objective(G, w_ugd, lam) <= fw.objective * (1 + 1e-3)
    torch.testing.assert_close(w_ugd, fw.weights, atol=1e-2, rtol=0)  # a softmax only approaches the zero weights


def test_ugd_never_raises_the_objective_even_with_a_huge_learning_rate():
    G = random_gradients(10, 10, seed=3, shift=1.0)
    start = pareto_objective(G, torch.ones(10))
    for lr in (1.0, 1e3, 1e6):
        assert pareto_objective(G, ugd_weights(G, steps=200, lr=lr)) <= start


def test_zero_in_the_convex_hull_gives_delta_zero():
    "More random directions than dimensions: almost surely 0 ∈ conv{g_t} (Wendel 1962), a Pareto-stationary point."
    G = random_gradients(40, 3, seed=11)
    sol = min_norm_weights(G)
    assert sol.delta.norm() < 1e-6 * G.norm(dim=1).max()
    G = torch.cat([random_gradients(4, 6, seed=12), -random_gradients(4, 6, seed=12)])  # g and −g: exactly stationary
    assert min_norm_weights(G).objective < 1e-20


@pytest.mark.parametrize("seed", range(4))
def test_objective_invariances(seed):
    K, P = 6, 15
    G = random_gradients(K, P, seed)
    w = torch.rand(K, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.01
    f = pareto_objective(G, w, lam=0.3)
    # the weights are normalised: any positive multiple scores the same
    assert math.isclose(pareto_objective(G, 7.5 * w, lam=0.3), f, rel_tol=1e-12)
    # renaming the tasks (rows and weights together) changes nothing
    perm = torch.randperm(K, generator=torch.Generator().manual_seed(seed))
    assert math.isclose(pareto_objective(G[perm], w[perm], lam=0.3), f, rel_tol=1e-12)
    # a rotation of parameter space changes nothing: the objective depends on G only through GGᵀ
    Q, _ = torch.linalg.qr(torch.randn(P, P, generator=torch.Generator().manual_seed(seed + 100), dtype=torch.float64))
    assert math.isclose(pareto_objective(G @ Q, w, lam=0.3), f, rel_tol=1e-10)
    sol, rotated = min_norm_weights(G), min_norm_weights(G @ Q)
    assert math.isclose(sol.objective, rotated.objective, rel_tol=1e-8, abs_tol=1e-14)
    # scaling all gradients by c scales the λ = 0 objective by c² and leaves w* alone
    scaled = min_norm_weights(3.0 * G)
    assert math.isclose(scaled.objective, 9 * sol.objective, rel_tol=1e-8, abs_tol=1e-14)
    torch.testing.assert_close(scaled.weights, sol.weights, atol=1e-6, rtol=0)
    # the optimum is never worse than any vertex or the uniform weights
    assert sol.objective <= min(pareto_objective(G, torch.eye(K)[k]) for k in range(K)) + 1e-12
    assert sol.objective <= pareto_objective(G, torch.ones(K)) + 1e-12


def test_strategy_bin_weights():
    for schedule in (cosine_schedule(), linear_schedule()):
        for strategy, gamma in [("const", None), ("snr", None), ("max-snr", 1.0), ("min-snr", 5.0), ("inv-snr", None)]:
            w = strategy_bin_weights(schedule, strategy, gamma, num_bins=10)
            assert w.shape == (10,) and w.dtype == torch.float64
            assert w.isfinite().all() and (w >= 0).all() and abs(w.sum() - 1) < 1e-12
    w = strategy_bin_weights(cosine_schedule(), "min-snr", 5.0)
    assert (w.diff() <= 1e-15).all(), "min-SNR is non-increasing in t"
    assert strategy_bin_weights(cosine_schedule(), "snr")[0] > 0.9
    assert strategy_bin_weights(cosine_schedule(), "const", num_bins=7).tolist() == pytest.approx([1 / 7] * 7)


def test_per_bin_gradients_are_the_gradients_of_the_bins_x0_errors():
    "Row k is the gradient of the unweighted x0-space MSE over bin k's draws, replayed here by hand."
    schedule = cosine_schedule(100)
    torch.manual_seed(0)
    net = torch.nn.Conv2d(1, 1, 3, padding=1)
    model = _Wrap(net)
    x0 = torch.randn(6, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    G = per_bin_gradients(model, schedule, x0, num_bins=4, samples_per_bin=6, batch_size=4,
                          generator=torch.Generator().manual_seed(2))
    # replay the draws: per bin a permutation, the timesteps, the noise, in that order
    gen, rows = torch.Generator().manual_seed(2), []
    for lo, hi in zip(bin_edges(100, 4)[:-1], bin_edges(100, 4)[1:]):
        pick = torch.randperm(6, generator=gen)
        t = torch.randint(lo, hi, (6,), generator=gen)
        noise = torch.randn((6, 1, 4, 4), generator=gen)
        pred = net(schedule.alpha(t).float().view(-1, 1, 1, 1) * x0[pick] + schedule.sigma(t).float().view(-1, 1, 1, 1) * noise)
        loss = (pred - x0[pick]).square().mean()
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, list(net.parameters()))]).double())
    torch.testing.assert_close(G, torch.stack(rows), atol=1e-6, rtol=1e-5)


class _Wrap(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, t, y): return self.net(x)


@pytest.mark.parametrize("call,message", [
    (lambda: pareto_objective(torch.eye(3), torch.tensor([0.5, -0.1, 0.6])), "w must be ≥ 0 (weights on the simplex), got -0.1 at index 1"),
    (lambda: pareto_objective(torch.eye(3), torch.ones(4)), "w must have one entry per task, shape (3,), got shape (4,)"),
    (lambda: pareto_objective(torch.eye(3), torch.ones(3), lam=-0.5), "lam must be a finite number ≥ 0 (λ of Eq. 11; 0 gives Eq. 10), got -0.5"),
    (lambda: pareto_objective(torch.eye(3), torch.ones(3), lam=float("nan")), "lam must be a finite number ≥ 0"),
    (lambda: pareto_objective(torch.ones(2, 3, 4), torch.ones(2)), "G must be a [K, P] matrix of K per-task gradients (K, P ≥ 1), got shape (2, 3, 4)"),
    (lambda: min_norm_weights(torch.ones(3)), "got shape (3,)"),
    (lambda: min_norm_weights(torch.eye(3), lam=-1.0), "got -1.0"),
    (lambda: min_norm_weights(torch.tensor([[1.0, float("inf")]])), "G must be finite"),
    (lambda: min_norm_weights(torch.eye(3), max_iters=-1), "max_iters must be an integer ≥ 0, got -1"),
    (lambda: min_norm_weights(torch.eye(3), method="away"), "method must be one of 'min-norm-point', 'frank-wolfe', got 'away'"),
    (lambda: ugd_weights(torch.eye(3), lam=-2.0), "got -2.0"),
    (lambda: ugd_weights(torch.eye(3), init=torch.tensor([1.0, -1.0, 1.0])), "init must be ≥ 0 (weights on the simplex), got -1 at index 1"),
    (lambda: ugd_weights(torch.eye(3), init=torch.ones(2)), "init must have one entry per task, shape (3,), got shape (2,)"),
    (lambda: ugd_weights(torch.eye(3), lr=float("inf")), "lr must be a finite number > 0, got inf"),
    (lambda: strategy_bin_weights(cosine_schedule(), "min-snr", num_bins=1001), "num_bins must be an integer in [1, 1000], got 1001"),
    (lambda: strategy_bin_weights(cosine_schedule(), "nope"), "unknown loss weighting strategy 'nope'; valid choices:"),
    (lambda: bin_edges(0, 1), "T must be an integer ≥ 1, got 0"),
    (lambda: bin_edges(10, 11), "num_bins must be an integer in [1, 10], got 11"),
    (lambda: bin_edges(10, 2.0), "num_bins must be an integer in [1, 10], got 2.0"),
    (lambda: strategy_bin_weights(cosine_schedule(), "min-snr", num_bins=0), "num_bins must be an integer in [1, 1000], got 0"),
    (lambda: pareto_objective(torch.eye(2), [0.0, 0.0]), "w must have a positive sum, got all zeros"),
    (lambda: pareto_objective(torch.eye(2), [1.0, float("nan")]), "w must be finite"),
    (lambda: min_norm_weights(torch.eye(3), lam=-0.1), "lam must be a finite number ≥ 0 (λ of Eq. 11; 0 gives Eq. 10), got -0.1"),
    (lambda: min_norm_weights(torch.tensor([[1.0, float("nan")]])), "G must be finite, got a NaN or infinite entry"),
    (lambda: min_norm_weights(torch.eye(3), tol=-1e-3), "tol must be a finite number ≥ 0, got -0.001"),
    (lambda: min_norm_weights(torch.eye(3), max_iters=2.5), "max_iters must be an integer ≥ 0, got 2.5"),
    (lambda: ugd_weights(torch.eye(3), init=torch.tensor([1.0, 0.0, 0.0])), "init must be > 0 (β = log w), got [1.0, 0.0, 0.0]"),
    (lambda: ugd_weights(torch.eye(3), lr=0), "lr must be a finite number > 0, got 0"),
    (lambda: ugd_weights(torch.eye(3), steps=-1), "steps must be an integer ≥ 0, got -1"),
    (lambda: per_bin_gradients(_Wrap(torch.nn.Conv2d(1, 1, 1)), cosine_schedule(), torch.zeros(4, 1, 2, 2), target="score"),
     "unknown prediction target 'score'; valid choices: 'x0', 'eps', 'v'"),
    (lambda: per_bin_gradients(_Wrap(torch.nn.Conv2d(1, 1, 1)), cosine_schedule(), torch.zeros(4, 1, 2, 2), torch.zeros(3)),
     "got 4 images but 3 labels"),
    (lambda: per_bin_gradients(_Wrap(torch.nn.Conv2d(1, 1, 1)), cosine_schedule(), torch.zeros(4, 1, 2, 2), samples_per_bin=5),
     "samples_per_bin must be an integer in [1, 4], got 5"),
    (lambda: per_bin_gradients(_Wrap(torch.nn.Conv2d(1, 1, 1)), cosine_schedule(), torch.zeros(4, 1, 2, 2), batch_size=0),
     "batch_size must be an integer ≥ 1, got 0"),
    (lambda: per_bin_gradients(_Wrap(torch.nn.Conv2d(1, 1, 1)), cosine_schedule(), torch.zeros(0, 1, 2, 2)),
     "x0 must be a non-empty batch [N, C, H, W], got shape (0, 1, 2, 2)"),
    (lambda: per_bin_gradients(_Wrap(torch.nn.Conv2d(1, 1, 1).requires_grad_(False)), cosine_schedule(), torch.zeros(4, 1, 2, 2)),
     "the model has no parameters that require a gradient"),
])
def test_bad_inputs_raise_value_errors_naming_the_value(call, message):
    "Each bad argument is a one-line ValueError naming the value (and the valid choices)."
    with pytest.raises(ValueError) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)
