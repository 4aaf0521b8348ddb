"""`minsnr.fid`: the Fréchet distance against an independent scipy reference, reference statistics files, the
Inception path through torch-fidelity (with randomly initialised weights saved to a temporary file, see
`conftest.save_random_inception_weights`) checked against torch-fidelity's own FID, the shipped feature classifiers
behind FD-digits / FD-photo-patches, and every bad input's message.
"""
import json
import re
import warnings

import numpy as np
import pytest
import scipy.linalg as sl
import torch
from PIL import Image

from minsnr import fid
from minsnr.fid import (FEATURE_NET_RECIPES, INCEPTION_FEATURE_EXTRACTOR, INCEPTION_WEIGHTS_ENV, INCEPTION_WEIGHTS_FILE,
                        INCEPTION_WEIGHTS_URL, check_stats, class_accuracy, fd_bundled, feature_net_info, feature_net_path,
                        feature_statistics, fid_against_reference, frechet_distance, inception_features, load_feature_net,
                        load_inception, load_reference_stats, save_feature_net, save_reference_stats)

METHODS = ("sqrtm", "eigh")


def reference_fd(mu1, s1, mu2, s2) -> float:
    "FD written out independently: Tr (Σ1Σ2)^½ = Tr (Σ1^½ Σ2 Σ1^½)^½, both roots by scipy's sqrtm, in float64."
    mu1, s1, mu2, s2 = (np.asarray(a, dtype=np.float64) for a in (mu1, s1, mu2, s2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r1 = np.real(sl.sqrtm(s1))
        cross = np.real(np.trace(sl.sqrtm(r1 @ s2 @ r1)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * cross)


def random_stats(rng, n, d, scale=1.0, shift=0.0):
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) * scale / np.sqrt(d) + shift
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def msg(text: str) -> str:
    return "^" + re.escape(text) + "$"


# --- the Fréchet distance -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("d,seed", [(1, 0), (5, 1), (32, 2)])
def test_matches_independent_reference(method, d, seed):
    rng = np.random.default_rng(seed)
    a, b = random_stats(rng, 400, d), random_stats(rng, 300, d, scale=1.7, shift=0.3)
    expected = reference_fd(*a, *b)
    assert expected > 0.05
    assert frechet_distance(*a, *b, method=method) == pytest.approx(expected, rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_symmetric_and_zero_against_itself(method):
    rng = np.random.default_rng(3)
    a, b = random_stats(rng, 200, 16), random_stats(rng, 200, 16, scale=0.5, shift=-1.0)
    assert frechet_distance(*a, *b, method=method) == pytest.approx(frechet_distance(*b, *a, method=method), rel=1e-9)
    assert abs(frechet_distance(*a, *a, method=method)) < 1e-9


@pytest.mark.parametrize("method", METHODS)
def test_diagonal_gaussians_closed_form(method):
    mu1, mu2 = np.array([0.0, 1.0, 2.0, -3.0]), np.array([1.0, 1.0, -1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25, 2.0]), np.array([9.0, 1.0, 0.25, 0.5])
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2), method=method) == pytest.approx(closed, rel=1e-12)
    # 1-D: (μ1 − μ2)² + (σ1 − σ2)²
    assert frechet_distance([2.0], [[9.0]], [0.0], [[1.0]], method=method) == pytest.approx(4 + 4)


@pytest.mark.parametrize("method", METHODS)
def test_rank_deficient_covariances_stay_finite(method):
    rng = np.random.default_rng(4)
    f1, f2 = rng.normal(size=(10, 64)), rng.normal(size=(12, 64)) * 2 + 0.1  # fewer samples than dimensions
    a, b = feature_statistics(f1), feature_statistics(f2)
    assert np.linalg.matrix_rank(a.sigma) == 9
    value = frechet_distance(*a, *b, method=method)
    assert np.isfinite(value) and value > 0
    assert value == pytest.approx(reference_fd(*a, *b), rel=1e-5)
    # ≈ 0 up to round-off, which the singular square roots amplify: relative to the total variance
    assert abs(frechet_distance(*a, *a, method=method)) < 1e-6 * np.trace(a.sigma)
    # exactly singular: zero covariances leave the squared distance of the means
    assert frechet_distance(np.zeros(3), np.zeros((3, 3)), np.ones(3), np.zeros((3, 3)), method=method) == pytest.approx(3.0)


def test_sqrtm_retry_and_imaginary_part():
    jordan = np.array([[0.0, 1.0], [0.0, 0.0]])  # no square root: scipy's sqrtm returns NaN, the ε·I retry is finite
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not np.isfinite(sl.sqrtm(jordan)).all()
    assert fid._sqrtm_trace(jordan, np.eye(2)) == pytest.approx(2 * np.sqrt(1e-6 * (1 + 1e-6)), rel=1e-6)
    with pytest.raises(ValueError, match=msg("sqrtm(Σ1Σ2) has an imaginary component of 1 on its diagonal (> 0.001): "
                                             "the covariances are not symmetric positive semi-definite")):
        frechet_distance(np.zeros(2), np.diag([-1.0, 1.0]), np.zeros(2), np.eye(2))


def test_feature_statistics():
    x = np.random.default_rng(5).normal(size=(50, 4)).astype(np.float32)
    mu, sigma = feature_statistics(torch.from_numpy(x))
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, (x - x.mean(0)).T.astype(np.float64) @ (x - x.mean(0)) / 49, rtol=1e-5)


@pytest.mark.parametrize("features,message", [
    (np.ones((1, 8)), "features has 1 sample(s); a covariance needs at least 2"),
    (np.ones((0, 8)), "features has 0 sample(s); a covariance needs at least 2"),
    (np.ones(8), "features must be a 2-D array [N, D], got shape (8,)"),
    ([[0.0, np.nan], [1.0, 2.0]], "features contain NaN or infinite values"),
])
def test_feature_statistics_bad_input(features, message):
    with pytest.raises(ValueError, match=msg(message)):
        feature_statistics(features)


@pytest.mark.parametrize("mu,sigma,message", [
    (np.zeros((2, 3)), np.eye(3), "ref.npz: mu must be a 1-D array, got shape (2, 3)"),
    (np.zeros(3), np.eye(4), "ref.npz: sigma must be a square matrix matching mu, shape (3, 3), got shape (4, 4)"),
    (np.zeros(3), np.zeros((3, 2)), "ref.npz: sigma must be a square matrix matching mu, shape (3, 3), got shape (3, 2)"),
    (np.array([0.0, np.nan]), np.eye(2), "ref.npz: mu contains NaN or infinite values"),
    (np.zeros(2), np.array([[1.0, np.inf], [0.0, 1.0]]), "ref.npz: sigma contains NaN or infinite values"),
])
def test_check_stats_bad_input(mu, sigma, message):
    with pytest.raises(ValueError, match=msg(message)):
        check_stats(mu, sigma, "ref.npz")


def test_frechet_distance_bad_input():
    with pytest.raises(ValueError, match=msg("the two statistics have different feature dimensions: 3 and 2")):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match=msg("method must be one of 'sqrtm', 'eigh', got 'svd'")):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(3), method="svd")
    with pytest.raises(ValueError, match=msg("statistics 2: sigma contains NaN or infinite values")):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.full((2, 2), np.nan))


# --- reference statistics files -------------------------------------------------------------------------------------

def test_edm_style_round_trip(tmp_path):
    mu, sigma = random_stats(np.random.default_rng(6), 40, 6)
    path = save_reference_stats(tmp_path / "edm-ref.npz", mu, sigma)
    with np.load(path) as f:  # EDM's `fid.py ref` format: exactly mu and sigma
        assert sorted(f.files) == ["mu", "sigma"]
    back = load_reference_stats(path)
    np.testing.assert_array_equal(back.mu, mu)
    np.testing.assert_array_equal(back.sigma, sigma)
    assert frechet_distance(*back, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_adm_style_reference_batch(tmp_path):
    mu, sigma = random_stats(np.random.default_rng(7), 40, 6)
    np.savez(tmp_path / "VIRTUAL_test_labeled.npz", arr_0=np.zeros((3, 8, 8, 3), np.uint8),
             mu=mu.astype(np.float32), sigma=sigma.astype(np.float32), mu_s=np.zeros(5), sigma_s=np.eye(5))
    stats = load_reference_stats(str(tmp_path / "VIRTUAL_test_labeled.npz"))
    assert stats.mu.dtype == stats.sigma.dtype == np.float64
    np.testing.assert_allclose(stats.sigma, sigma, rtol=1e-6)


def test_reference_stats_bad_files(tmp_path):
    np.savez(tmp_path / "no-sigma.npz", arr_0=np.zeros(3), mu=np.zeros(3))
    with pytest.raises(ValueError, match=msg(f"reference statistics file {tmp_path / 'no-sigma.npz'} has no 'sigma' array "
                                             "(it has: 'arr_0', 'mu'); expected an ADM, EDM or pytorch-fid .npz with 'mu' and 'sigma'")):
        load_reference_stats(tmp_path / "no-sigma.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(2))
    with pytest.raises(ValueError, match=msg(f"reference statistics file {tmp_path / 'shape.npz'}: sigma must be a square "
                                             "matrix matching mu, shape (3, 3), got shape (2, 2)")):
        load_reference_stats(tmp_path / "shape.npz")
    np.savez(tmp_path / "nan.npz", mu=np.array([0.0, np.nan]), sigma=np.eye(2))
    with pytest.raises(ValueError, match=msg(f"reference statistics file {tmp_path / 'nan.npz'}: mu contains NaN or infinite values")):
        load_reference_stats(tmp_path / "nan.npz")
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(ValueError, match=msg(f"reference statistics file {tmp_path / 'text.npz'} is not a NumPy .npz archive")):
        load_reference_stats(tmp_path / "text.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(ValueError, match=msg(f"reference statistics file {tmp_path / 'plain.npy'} is not a NumPy .npz archive")):
        load_reference_stats(tmp_path / "plain.npy")
    np.savez(tmp_path / "objects.npz", mu=np.array([None, 1.0], dtype=object), sigma=np.eye(2))
    with pytest.raises(ValueError, match="^" + re.escape(f"reference statistics file {tmp_path / 'objects.npz'}: cannot read 'mu' and 'sigma' (")):
        load_reference_stats(tmp_path / "objects.npz")
    with pytest.raises(FileNotFoundError, match=msg(f"reference statistics file {tmp_path / 'missing.npz'} does not exist")):
        load_reference_stats(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=msg(f"statistics for {tmp_path / 'x.npz'}: mu must be a 1-D array, got shape ()")):
        save_reference_stats(tmp_path / "x.npz", 0.0, np.eye(1))
    assert not (tmp_path / "x.npz").exists()


def test_save_reference_stats_never_overwrites_silently(tmp_path):
    mu, sigma = random_stats(np.random.default_rng(8), 20, 3)
    path = save_reference_stats(tmp_path / "ref.npz", mu, sigma)
    with pytest.raises(FileExistsError, match=msg(f"{path} exists: pass overwrite=True to replace it, or another path")):
        save_reference_stats(path, mu + 1, sigma)
    np.testing.assert_array_equal(load_reference_stats(path).mu, mu)  # the first file is untouched
    save_reference_stats(path, mu + 1, sigma, overwrite=True)
    np.testing.assert_array_equal(load_reference_stats(path).mu, mu + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.npz"]  # written through a temporary file, none left


# --- Inception-v3 through torch-fidelity ----------------------------------------------------------------------------

WHERE = (f"download torch-fidelity's {INCEPTION_WEIGHTS_FILE} from {INCEPTION_WEIGHTS_URL} on a machine with internet "
         "access (minsnr never downloads), copy it here and pass its path")


def test_missing_inception_weights(monkeypatch, tmp_path):
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=msg("feature_extractor_weights_path: no Inception-v3 weights file given "
                                                    f"(pass weights_path=... or set ${INCEPTION_WEIGHTS_ENV}); {WHERE}")):
        load_inception()
    missing = tmp_path / INCEPTION_WEIGHTS_FILE
    with pytest.raises(FileNotFoundError, match=msg(f"feature_extractor_weights_path: Inception-v3 weights file "
                                                    f"{str(missing)!r} not found; {WHERE}")):
        fid_against_reference(torch.zeros(2, 3, 8, 8), (np.zeros(2048), np.eye(2048)), missing)
    monkeypatch.setenv(INCEPTION_WEIGHTS_ENV, str(missing))
    with pytest.raises(FileNotFoundError, match="not found"):
        inception_features(torch.zeros(2, 3, 8, 8))


@pytest.fixture
def random_inception(random_inception_weights):
    "Randomly initialised Inception-v3 weights in torch-fidelity's layout (conftest), saved once per session."
    return random_inception_weights


def test_inception_features_with_random_weights(random_inception):
    net = load_inception(random_inception, device="cpu")
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(3, 1, 12, 12, generator=g) * 2 - 1
    f = inception_features(grey, extractor=net, batch_size=2)
    assert f.shape == (3, 2048) and f.dtype == np.float32 and np.isfinite(f).all()
    assert np.abs(f).mean() > 1e-2  # calibrated BatchNorm: features do not vanish
    # grey = its RGB repetition; float [−1, 1] = its rounded uint8 pixels
    rgb_uint8 = ((grey + 1) * 127.5).round().to(torch.uint8).repeat(1, 3, 1, 1)
    np.testing.assert_array_equal(f, inception_features(rgb_uint8, extractor=net))
    # the same weights, loaded twice, give the same features
    np.testing.assert_array_equal(f, inception_features(grey, random_inception, device="cpu"))


def _torch_fidelity_fid(folder_a, folder_b, weights, layer) -> float:
    "torch-fidelity's own FID of two folders of images (its features and its Fréchet distance): the independent reference."
    import torch_fidelity
    return float(torch_fidelity.calculate_metrics(
        input1=str(folder_a), input2=str(folder_b), fid=True, feature_extractor=INCEPTION_FEATURE_EXTRACTOR,
        feature_extractor_weights_path=str(weights), feature_layer_fid=layer, batch_size=64, cuda=False,
        save_cpu_ram=True, verbose=False, cache=False)["frechet_inception_distance"])


def _png_folder(images, folder):
    folder.mkdir()
    for i, img in enumerate(((images + 1) * 127.5).round().to(torch.uint8)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"{i}.png")
    return folder


def test_fid_end_to_end_with_random_weights(random_inception, tmp_path):
    "torch-fidelity's FID and ours on the same images, at the 64-d layer (fast); then FID's 2048-d layer once."
    g = torch.Generator().manual_seed(1)
    a = torch.rand(5, 3, 16, 16, generator=g) * 2 - 1
    b = torch.rand(5, 3, 16, 16, generator=g) * 0.5
    layer, cpu = "64", dict(device="cpu")
    fa = inception_features(a, random_inception, feature_layer=layer, **cpu)
    assert fa.shape == (5, 64)
    ref_a = save_reference_stats(tmp_path / "a.npz", *feature_statistics(fa))
    total_variance = np.trace(np.cov(fa.astype(np.float64).T))
    assert abs(fid_against_reference(a, ref_a, random_inception, feature_layer=layer, **cpu)) < 1e-6 * total_variance
    # our path: features → our Fréchet distance against a statistics file
    ours = fid_against_reference(b, ref_a, random_inception, feature_layer=layer, **cpu)
    assert ours > 1e-3 * total_variance
    # torch-fidelity end to end (two folders of PNGs, its features, its distance), with the same weights file
    theirs = _torch_fidelity_fid(_png_folder(a, tmp_path / "a"), _png_folder(b, tmp_path / "b"), random_inception, layer)
    assert theirs == pytest.approx(ours, rel=1e-4)
    with pytest.raises(ValueError, match=msg("the reference statistics have 3 dimensions, the Inception features 64: "
                                             "they come from another feature layer")):
        fid_against_reference(b, (np.zeros(3), np.eye(3)), random_inception, feature_layer=layer, **cpu)
    with pytest.raises(ValueError, match=msg("Inception features of the images has 1 sample(s); a covariance needs at least 2")):
        fid_against_reference(b[:1], ref_a, random_inception, feature_layer=layer, **cpu)
    # FID's layer: 2048-d pool-3 features (5 images: rank-4 covariances), the eigh route
    sa = feature_statistics(inception_features(a, random_inception, **cpu))
    assert sa.mu.shape == (2048,)
    fid_2048 = fid_against_reference(b, sa, random_inception, method="eigh", **cpu)
    assert np.isfinite(fid_2048) and fid_2048 > 1e-3 * np.trace(sa.sigma)


@pytest.mark.parametrize("images,message", [
    (torch.zeros(2, 4, 4), "images must be a tensor [N, 1 or 3, H, W], got (2, 4, 4)"),
    (torch.zeros(2, 2, 4, 4), "images must be a tensor [N, 1 or 3, H, W], got (2, 2, 4, 4)"),
    ([[0.0]], "images must be a tensor [N, 1 or 3, H, W], got list"),
    (torch.zeros(1, 3, 2, 2, dtype=torch.int64), "images must be uint8 pixels or floats in [-1, 1], got dtype torch.int64"),
    (torch.full((1, 3, 2, 2), float("inf")), "images contain NaN or infinite values"),
    (torch.tensor([-3.0, 0.5]).view(1, 1, 1, 2), "got floats in [-3, 0.5]: rescale them to [-1, 1]"),
])
def test_to_uint8_rgb_bad_input(images, message):
    with pytest.raises(ValueError) as err:
        fid.to_uint8_rgb(images)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_to_uint8_rgb_is_core_rounding():
    x = torch.linspace(-1.2, 1.0005, 97).view(1, 1, 1, 97).clamp(min=-1)
    from minsnr.core import to_uint8
    assert torch.equal(fid.to_uint8_rgb(x), to_uint8(x).expand(-1, 3, -1, -1))


def test_image_input_errors(tmp_path, random_inception):
    with pytest.raises(ValueError, match=msg("images must be a tensor [N, 1 or 3, H, W], got (3, 8, 8)")):
        inception_features(torch.zeros(3, 8, 8), random_inception, device="cpu")
    with pytest.raises(ValueError, match=msg("images contain NaN or infinite values")):
        fid.to_uint8_rgb(torch.full((2, 3, 4, 4), float("nan")))


# --- FD-digits / FD-photo-patches -----------------------------------------------------------------------------------

# thresholds a little under the accuracies measured when the shipped files were written (digits 0.961, photo-patches 0.776)
MIN_VAL_ACCURACY = {"digits": 0.94, "photo-patches": 0.74}


@pytest.mark.parametrize("name", sorted(FEATURE_NET_RECIPES))
def test_shipped_classifier(name):
    path = feature_net_path(name)
    assert path.is_file() and path.stat().st_size < 400 * 1024
    info = feature_net_info(name)
    assert info["recipe"] == FEATURE_NET_RECIPES[name] and info["recipe"].dataset == name
    assert info["command"] == f"python -c \"from minsnr.fid import write_feature_net_asset; write_feature_net_asset('{name}')\""
    net = load_feature_net(name)
    x, y = fid._split_tensors(name, "val")
    acc = class_accuracy(x, y, name, net)
    assert acc == pytest.approx(info["val_accuracy"], abs=1e-6)
    assert acc > MIN_VAL_ACCURACY[name]
    # a wrong label for every image: the accuracy drops to the share of the classifier's errors that happen to match
    assert class_accuracy(x, (y + 1) % (int(y.max()) + 1), name) < 0.2


@pytest.mark.parametrize("name", sorted(FEATURE_NET_RECIPES))
def test_fd_bundled_sanity(name):
    xt, _ = fid._split_tensors(name, "train")
    xv, _ = fid._split_tensors(name, "val")
    noise = torch.rand(len(xv), *xv.shape[1:], generator=torch.Generator().manual_seed(0)) * 2 - 1
    fd_val, fd_noise = fd_bundled(xv, name), fd_bundled(noise, name)
    assert abs(fd_bundled(xt, name)) < 1e-6
    assert 0 < fd_val < fd_noise / 5
    # a random training subset of the validation split's size: the sampling-noise floor, far below noise
    subset = xt[torch.randperm(len(xt), generator=torch.Generator().manual_seed(1))[: len(xv)]]
    assert 0 < fd_bundled(subset, name) < fd_noise / 50
    # uint8 pixels and floats in [−1, 1] are the same images
    assert fd_bundled(((xv + 1) * 127.5).round().to(torch.uint8), name) == pytest.approx(fd_val, rel=0.05)
    # the distance reads the features: shifting the images' brightness moves it
    assert fd_bundled((xv + 0.5).clamp(-1, 1), name) > 2 * fd_val


def test_fd_bundled_bad_input():
    with pytest.raises(ValueError, match=msg("digits features of the images has 1 sample(s); a covariance needs at least 2")):
        fd_bundled(torch.zeros(1, 1, 8, 8), "digits")
    with pytest.raises(ValueError, match=msg("images for 'digits' must be a tensor [N, 1, 8, 8] in [-1, 1], got (4, 3, 8, 8)")):
        fd_bundled(torch.zeros(4, 3, 8, 8), "digits")
    with pytest.raises(ValueError, match=msg("images contain NaN or infinite values")):
        fd_bundled(torch.full((4, 1, 8, 8), float("nan")), "digits")
    with pytest.raises(ValueError, match="^" + re.escape("dataset_name must be one of 'digits', 'photo-patches', got 'cifar10'")):
        fd_bundled(torch.zeros(4, 1, 8, 8), "cifar10")
    with pytest.raises(ValueError, match=msg("got 4 images but 3 labels")):
        class_accuracy(torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.int64), "digits")
    with pytest.raises(FileNotFoundError, match=msg("feature classifier file /nonexistent/net.safetensors does not exist")):
        load_feature_net("/nonexistent/net.safetensors")


def test_save_feature_net_round_trip_and_no_silent_overwrite(tmp_path):
    net = fid.train_feature_net("digits", steps=2, channels=(4, 8), convs_per_stage=1)
    path = save_feature_net(net, tmp_path / "net.safetensors", 0.25)
    info = feature_net_info(path)
    assert info["val_accuracy"] == 0.25 and info["recipe"] == net.recipe and info["in_channels"] == "1"
    back = load_feature_net(path)
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), net.state_dict().values()))
    with pytest.raises(FileExistsError, match="net.safetensors exists: pass overwrite=True"):
        save_feature_net(net, path, 0.5)
    assert feature_net_info(path)["val_accuracy"] == 0.25
    assert save_feature_net(net, path, 0.5, overwrite=True) == path and feature_net_info(path)["val_accuracy"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["net.safetensors"]


@pytest.mark.parametrize("call,message", [
    (lambda: fid.feature_net_path("cifar10"), "dataset_name must be one of 'digits', 'photo-patches', got 'cifar10'"),
    (lambda: fid.train_feature_net("mnist"), "dataset_name must be one of 'digits', 'photo-patches', got 'mnist'"),
])
def test_feature_net_bad_names(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert message in str(err.value)


def test_labels_from_a_manifest_need_seed_names(tmp_path):
    from minsnr.sampler import SAMPLING_MANIFEST
    (tmp_path / SAMPLING_MANIFEST).write_text(json.dumps({"settings": {"num_classes": 10, "classes": None, "dataset": "digits"}}))
    with pytest.raises(ValueError, match="PNGs not named <seed>.png \\(e.g. a.png\\): pass labels="):
        fid._labels_from_manifest(tmp_path, ["000001.png", "a.png"], "digits")
    assert fid._labels_from_manifest(tmp_path, ["000001.png"], "photo-patches") is None


def test_dataset_name_spellings():
    "'photo_patches' is `minsnr.data.make_dataset`'s spelling of 'photo-patches' too."
    xv, yv = fid._split_tensors("photo-patches", "val")
    assert fd_bundled(xv[:50], "photo_patches") == fd_bundled(xv[:50], "photo-patches")
    assert class_accuracy(xv, yv, "Photo_Patches") == class_accuracy(xv, yv, "photo-patches")


# --- images outside [−1, 1] are refused, not clamped --------------------------------------------------------------

DIGITS_VAL = fid._split_tensors("digits", "val")[0]
RANGE_CALLS = {
    "fd_bundled": lambda x: fd_bundled(x, "digits"),
    "bundled_features": lambda x: fid.bundled_features(x, "digits"),
    "class_accuracy": lambda x: class_accuracy(x, torch.zeros(len(x), dtype=torch.int64), "digits"),
    "inception_to_uint8_rgb": lambda x: fid.to_uint8_rgb(x),
}


@pytest.mark.parametrize("entry", list(RANGE_CALLS))
@pytest.mark.parametrize("images,found,hint", [
    ((DIGITS_VAL[:20] + 1) * 127.5, "got floats in [0, 255]", "they look like 0…255 pixels: pass them as uint8"),
    (DIGITS_VAL[:20] * 3, "got floats in [-3, 3]", "rescale them to [-1, 1]"),
], ids=["0-255", "pm3"])
def test_images_outside_the_range_are_refused(entry, images, found, hint):
    with pytest.raises(ValueError) as err:
        RANGE_CALLS[entry](images)
    assert found in str(err.value) and hint in str(err.value) and "must be uint8 pixels or floats in [-1, 1]" in str(err.value)


def test_round_off_beyond_the_range_is_clipped():
    x = DIGITS_VAL[:50]
    over = torch.where(x.abs() == 1, x * 1.0005, x)  # ±1 overshoots by 5e-4, within RANGE_TOLERANCE
    assert not torch.equal(over, x) and fd_bundled(over, "digits") == fd_bundled(x, "digits")


# --- score_images ----------------------------------------------------------------------------------------------------

def _digit_folder(folder, seeds, classes):
    "A folder of real validation digits named <seed>.png, the image of each seed showing `classes[i]`."
    from minsnr.sampler import save_pngs
    x, y = fid._split_tensors("digits", "val")
    pick = [int(torch.nonzero(y == c)[i // 10 % 10]) for i, c in enumerate(classes)]  # different images of each class
    save_pngs(x[pick], list(seeds), folder)
    return folder


def test_score_images_folder_and_tensor(tmp_path):
    x, y = fid._split_tensors("digits", "val")
    from minsnr.sampler import save_pngs
    save_pngs(x[:100], list(range(100)), tmp_path)
    folder = fid.score_images(tmp_path, "fd-digits", labels=y[:100])
    tensor = fid.score_images(x[:100], "fd-digits", labels=y[:100])
    assert folder["FD-digits"] == pytest.approx(tensor["FD-digits"], rel=0.05)  # only the PNGs' rounding differs
    assert folder["class_accuracy"] > 0.9 and folder["labels_from"] == "labels" and folder["num_images"] == 100
    shuffled = fid.score_images(tmp_path, "fd-digits", labels=y[:100].roll(1))
    assert shuffled["class_accuracy"] < 0.3
    val = fid.score_images(tmp_path, "fd-digits", reference="val")
    assert val["reference"] == "digits val split" and val["FD-digits"] != folder["FD-digits"] and "class_accuracy" not in val


def test_score_images_reads_classes_from_the_sampling_manifest(tmp_path):
    from minsnr.sampler import MANIFEST_SETTINGS, check_manifest, seed_noise
    seeds = list(range(100, 160))
    drawn = [seed_noise(s, (1,), 10)[1] for s in seeds]
    settings = dict.fromkeys(MANIFEST_SETTINGS) | {"num_classes": 10, "dataset": "digits"}
    # each seed's random class: the images show them
    check_manifest(tmp_path / "random", settings)
    r = fid.score_images(_digit_folder(tmp_path / "random", seeds, drawn), "fd-digits")
    assert r["labels_from"] == "sampling.json" and r["class_accuracy"] > 0.9
    # one class for all (classes=3), but the images show the drawn classes: the accuracy says so
    check_manifest(tmp_path / "three", settings | {"classes": 3})
    r = fid.score_images(_digit_folder(tmp_path / "three", seeds, drawn), "fd-digits")
    assert r["class_accuracy"] == pytest.approx(np.mean([c == 3 for c in drawn]), abs=0.1) and r["class_accuracy"] < 0.3
    # an unconditional run, or another data set: no classes
    check_manifest(tmp_path / "uncond", settings | {"num_classes": None})
    assert "class_accuracy" not in fid.score_images(_digit_folder(tmp_path / "uncond", seeds, drawn), "fd-digits")


def test_score_images_fid_with_random_inception(random_inception, tmp_path, monkeypatch):
    monkeypatch.setattr(fid, "FID_FEATURE_LAYER", "64")  # the fast layer: the path, not a real FID
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(5, 3, 16, 16, generator=g) * 2 - 1, torch.rand(5, 3, 16, 16, generator=g) * 0.5
    ref = save_reference_stats(tmp_path / "ref.npz", *feature_statistics(
        inception_features(b, random_inception, feature_layer="64", device="cpu")))
    from minsnr.sampler import save_pngs
    save_pngs(a, list(range(5)), tmp_path / "png")
    r = fid.score_images(tmp_path / "png", "fid", reference=str(ref), inception_weights=str(random_inception), device="cpu")
    want = fid_against_reference(a, ref, random_inception, device="cpu", feature_layer="64")
    assert r["metric"] == "fid" and r["num_images"] == 5 and r["FID"] == pytest.approx(want, rel=1e-3) and r["FID"] > 0


def _png(folder, name, array):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(folder / name)
    return folder


def _folder_rgb_digits(t):
    return str(_png(_png(t / "rgb", "000000.png", np.zeros((8, 8, 3))), "000001.png", np.zeros((8, 8, 3))))


def _folder_mixed(t):
    return str(_png(_png(t / "mixed", "a.png", np.zeros((16, 16, 3))), "b.png", np.zeros((8, 8, 3))))


def _folder_rgba(t):
    return str(_png(t / "rgba", "a.png", np.zeros((8, 8, 4))))


def _empty(t):
    (t / "empty").mkdir()
    (t / "empty" / "notes.txt").write_text("no images")
    return str(t / "empty")


def _weights_file(t):
    (t / "w.pth").write_bytes(b"")
    return str(t / "w.pth")


def _npz(t):
    return str(save_reference_stats(t / "ref.npz", np.zeros(3), np.eye(3)))


# (arguments, a function of tmp_path giving more arguments, exception, message fragment)
SCORE_IMAGES_BAD_INPUT = [
    (dict(metric="kid"), None, ValueError, "metric must be one of 'fd-digits', 'fd-photo', 'fid', got 'kid'"),
    (dict(batch_size=0), None, ValueError, "batch_size must be an integer ≥ 1, got 0"),
    (dict(reference="ref.npz"), None, ValueError, "for metric 'fd-digits', reference must be a split of the bundled digits set"),
    (dict(metric="fid"), None, ValueError, "metric 'fid' needs reference=<statistics .npz>"),
    (dict(metric="fid", reference="/nonexistent/ref.npz"), None, FileNotFoundError,
     "reference: statistics file '/nonexistent/ref.npz' does not exist"),
    (dict(metric="fid"), lambda t: dict(reference=_npz(t)), FileNotFoundError, "metric 'fid' needs inception_weights=<local"),
    (dict(metric="fid", inception_weights="/nonexistent/w.pth"), lambda t: dict(reference=_npz(t)), FileNotFoundError,
     "inception_weights: file '/nonexistent/w.pth' does not exist"),
    (dict(metric="fid", labels=[0, 1]), None, ValueError, "labels are only used by the fd-digits and fd-photo metrics"),
    (dict(images="/nonexistent/folder"), None, FileNotFoundError, "images: folder '/nonexistent/folder' does not exist"),
    ({}, lambda t: dict(images=_empty(t)), ValueError, "images: no .png files in"),
    ({}, lambda t: dict(images=_folder_rgb_digits(t)), ValueError,
     "000000.png in", ),
    ({}, lambda t: dict(images=_folder_rgb_digits(t)), ValueError,
     "is 3×8×8 (C×H×W), but fd-digits (digits's images) needs 1×8×8"),
    (dict(metric="fd-photo"), lambda t: dict(images=_folder_rgb_digits(t)), ValueError, "but fd-photo (photo-patches's images) needs 3×32×32"),
    (dict(metric="fid"), lambda t: dict(images=_folder_mixed(t), reference=_npz(t), inception_weights=_weights_file(t)),
     ValueError, "b.png in", ),
    (dict(metric="fid"), lambda t: dict(images=_folder_mixed(t), reference=_npz(t), inception_weights=_weights_file(t)),
     ValueError, "is 3×8×8 (C×H×W), but a.png is 3×16×16: all images must have one size"),
    ({}, lambda t: dict(images=_folder_rgba(t)), ValueError, "has mode 'RGBA'; expected greyscale ('L') or RGB PNGs"),
    (dict(images=(DIGITS_VAL[:10] + 1) * 127.5), None, ValueError, "got floats in [0, 255]: they look like 0…255 pixels"),
    (dict(images=DIGITS_VAL[:1]), None, ValueError, "images: 1 image(s); a Fréchet distance needs at least 2"),
    (dict(images=[DIGITS_VAL[0]]), None, ValueError, "images must be a folder of PNGs or an image tensor [N, C, H, W], got list"),
    (dict(images=DIGITS_VAL[:10], labels=[0, 1]), None, ValueError, "got 10 images but 2 labels"),
    (dict(images=DIGITS_VAL[:10], metric="fd-photo"), None, ValueError, "images for 'photo-patches' must be a tensor [N, 3, 32, 32]"),
]


@pytest.mark.parametrize("kwargs,paths,exc,message", SCORE_IMAGES_BAD_INPUT,
                         ids=[f"{i}-{m[:30]}" for i, (_, _, _, m) in enumerate(SCORE_IMAGES_BAD_INPUT)])
def test_score_images_bad_input(tmp_path, monkeypatch, kwargs, paths, exc, message):
    monkeypatch.delenv(INCEPTION_WEIGHTS_ENV, raising=False)
    args = {"images": DIGITS_VAL[:10], **kwargs, **(paths(tmp_path) if paths else {})}
    with pytest.raises(exc) as err:
        fid.score_images(**args)
    assert message in str(err.value) and "\n" not in str(err.value)
