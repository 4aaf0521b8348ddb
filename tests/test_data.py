"""`minsnr.data`: every dataset on tiny data made in tmp_path, the sampler's guarantees, the VAE round trip, bad input."""
import json
import re
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Subset

from minsnr.data import (DATASETS, LATENT_META, PHOTOS, SD_VAE_SCALE, CelebA64Dataset, DigitsDataset,
                         ImageFolderDataset, LatentDataset, PhotoPatchesDataset, ShardedInfiniteSampler,
                         UnreadableImageWarning, adm_center_crop, celeba_crop, decode_latents, encode_latents,
                         load_vae, make_dataset, uint8_to_unit)


def raises(exc, message):
    "pytest.raises for an exact substring of the message."
    return pytest.raises(exc, match=re.escape(message))


def random_image(path: Path, size=(120, 90), seed=0):
    "A random RGB image of size (width, height), saved in the format its suffix names."
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- pixels and the contract

def test_uint8_to_unit_range_and_layout():
    arr = np.arange(24, dtype=np.uint8).reshape(2, 4, 3) * 10
    x = uint8_to_unit(arr)
    assert x.shape == (3, 2, 4) and x.dtype == torch.float32
    assert torch.equal(x[:, 1, 2], torch.from_numpy(arr[1, 2]).float() / 127.5 - 1)
    assert uint8_to_unit(np.array([[0, 255]], dtype=np.uint8)).tolist() == [[[-1.0, 1.0]]]
    with raises(ValueError, "expected uint8 pixels, got float32"):
        uint8_to_unit(np.zeros((2, 2), dtype=np.float32))


# ---------------------------------------------------------------- digits

def test_digits_split_is_stratified_disjoint_and_deterministic():
    train, val, full = DigitsDataset("train"), DigitsDataset("val"), DigitsDataset("all")
    assert (len(train), len(val), len(full)) == (1438, 359, 1797)
    assert not set(train.indices.tolist()) & set(val.indices.tolist())
    assert sorted(train.indices.tolist() + val.indices.tolist()) == list(range(1797))
    counts = torch.bincount(val.labels, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 37  # ≈ 20 % of each class (174…183 images)
    assert np.array_equal(DigitsDataset("val", seed=0).indices, val.indices)
    assert not np.array_equal(DigitsDataset("val", seed=3).indices, val.indices)
    x, y = train[5]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64 and y.ndim == 0
    xs = torch.stack([full[i][0] for i in range(len(full))])
    assert xs.min() == -1 and xs.max() == 1
    assert torch.equal(xs[0, 0] * 8 + 8, torch.from_numpy(load_digits().images[0]).float())
    assert train.num_classes == 10 and train.sample_shape == (1, 8, 8)


BAD_OPTIONS = [  # one-line errors that name the value and the valid choices
    (lambda: DigitsDataset("test"), "split must be one of 'train', 'val', 'all', got 'test'"),
    (lambda: DigitsDataset(val_fraction=0), "val_fraction must be a number in (0, 1), got 0"),
    (lambda: DigitsDataset(val_fraction=1.0), "val_fraction must be a number in (0, 1), got 1.0"),
    (lambda: DigitsDataset(val_fraction=True), "val_fraction must be a number in (0, 1), got True"),
    (lambda: PhotoPatchesDataset("all"), "split must be one of 'train', 'val', got 'all'"),
    (lambda: PhotoPatchesDataset(crops_per_photo=0), "crops_per_photo must be an integer ≥ 1, got 0"),
    (lambda: PhotoPatchesDataset(crops_per_photo=2.5), "crops_per_photo must be an integer ≥ 1, got 2.5"),
    (lambda: PhotoPatchesDataset(patch_size=0), "patch_size must be an integer ≥ 1, got 0"),
    (lambda: PhotoPatchesDataset(scale=2), "scale must be a number in (0, 1], got 2"),
    (lambda: PhotoPatchesDataset("val", patch_size=64),
     "photo 'astronaut' at scale 0.5 has a val region of 52×256 pixels, too small for patch_size=64"),
    (lambda: ShardedInfiniteSampler(10, 2, 2), "rank must be an integer in [0, 1], got 2"),
    (lambda: ShardedInfiniteSampler(10, 3, 3), "rank must be an integer in [0, 2], got 3"),
    (lambda: ShardedInfiniteSampler(10, 0, 0), "world_size must be an integer ≥ 1, got 0"),
    (lambda: ShardedInfiniteSampler(0), "dataset_len must be an integer ≥ 1, got 0"),
    (lambda: ShardedInfiniteSampler(10, batch_size=0), "batch_size must be an integer ≥ 1, got 0"),
    (lambda: ShardedInfiniteSampler(10, start_index=-2), "start_index must be an integer ≥ 0, got -2"),
    (lambda: ShardedInfiniteSampler(10, 0, 2, start_index=6, batch_size=2),
     "start_index=6 must be a multiple of world_size × batch_size = 4 (a step boundary)"),
    (lambda: ShardedInfiniteSampler(10, 0, 3, start_index=4), "start_index=4 must be a multiple of world_size × batch_size = 3"),
    (lambda: make_dataset("cifar10"), "unknown dataset 'cifar10'; valid choices: 'digits', 'photo-patches', 'imagefolder', "
                                      "'celeba64', 'latents'"),
    (lambda: make_dataset("digits", root="data"), "dataset 'digits' is bundled and takes no root, got root='data'"),
    (lambda: make_dataset("latents"), "dataset 'latents' reads local files: pass root=<folder>"),
]


@pytest.mark.parametrize("make, message", BAD_OPTIONS, ids=[m[:40] for _, m in BAD_OPTIONS])
def test_bad_options(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_index_checks():
    ds = DigitsDataset("val")
    assert torch.equal(ds[-1][0], ds[len(ds) - 1][0])
    assert torch.equal(ds[torch.tensor(3)][0], ds[np.int64(3)][0])
    with raises(IndexError, "index 359 is out of range for a dataset of 359 items"):
        ds[359]


# ---------------------------------------------------------------- photo patches

def test_photo_patches_shapes_labels_and_crops():
    from minsnr.data import _scaled_photo
    ds = PhotoPatchesDataset("train", crops_per_photo=10)
    assert len(ds) == 60 and ds.num_classes == 6 and ds.classes == PHOTOS and ds.sample_shape == (3, 32, 32)
    assert ds.labels.tolist() == [c for c in range(6) for _ in range(10)]
    for i in (0, 17, 59):
        x, y = ds[i]
        c, top, left, _ = ds.boxes[i]
        assert y.item() == c and x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
        photo = _scaled_photo(PHOTOS[c], 0.5)
        assert torch.equal(x, uint8_to_unit(photo[top:top + 32, left:left + 32]))


def test_photo_patches_train_and_val_never_overlap():
    from minsnr.data import _scaled_photo
    train, val = PhotoPatchesDataset("train", crops_per_photo=300), PhotoPatchesDataset("val", crops_per_photo=300)
    for c, name in enumerate(PHOTOS):
        width = _scaled_photo(name, 0.5).shape[1]
        strip = int(width * 0.8)
        tr, va = train.boxes[train.boxes[:, 0] == c], val.boxes[val.boxes[:, 0] == c]
        assert (tr[:, 3] == strip).all() and (va[:, 3] == strip).all()
        assert tr[:, 2].max() + 32 <= strip <= va[:, 2].min()
        assert va[:, 2].max() + 32 <= width


def test_photo_patches_deterministic_and_flipped():
    a, b = PhotoPatchesDataset("val", seed=7), PhotoPatchesDataset("val", seed=7)
    assert torch.equal(a._crops, b._crops)
    assert not torch.equal(a._crops, PhotoPatchesDataset("val", seed=8)._crops)
    f = PhotoPatchesDataset("val", seed=7, hflip=True)
    assert len(f) == 2 * len(a)
    assert torch.equal(f[len(a) + 3][0], a[3][0].flip(-1)) and f[len(a) + 3][1] == a[3][1]


# ---------------------------------------------------------------- ADM's crop

def test_adm_center_crop_matches_the_recipe(tmp_path):
    img = Image.open(random_image(tmp_path / "a.png", size=(1000, 600)))
    out = adm_center_crop(img, 64)
    # by hand: 1000×600 → 500×300 → 250×150 → 125×75 (box), → 107×64 (bicubic), columns 21…84
    step = img.convert("RGB")
    for size in ((500, 300), (250, 150), (125, 75)):
        step = step.resize(size, Image.BOX)
    expected = np.asarray(step.resize((107, 64), Image.BICUBIC))[:, 21:85]
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8 and np.array_equal(out, expected)


def test_adm_center_crop_portrait_and_grey():
    grey = Image.fromarray(np.full((300, 100), 77, dtype=np.uint8))  # portrait, single channel
    out = adm_center_crop(grey, 32)
    assert out.shape == (32, 32, 3) and (out == 77).all()


# ---------------------------------------------------------------- image folders

@pytest.fixture
def tree(tmp_path):
    "cat/: 0.png 1.png 2.png (truncated), dog/: 0.JPEG, sub/1.jpg, notes.jpg (not an image), .hidden.png."
    root = tmp_path / "tree"
    (root / "cat").mkdir(parents=True)
    (root / "dog" / "sub").mkdir(parents=True)
    random_image(root / "cat" / "0.png", seed=1)
    random_image(root / "cat" / "1.png", seed=2)
    png = (root / "cat" / "1.png").read_bytes()
    (root / "cat" / "2.png").write_bytes(png[: len(png) // 2])
    random_image(root / "dog" / "0.JPEG", seed=3)
    random_image(root / "dog" / "sub" / "1.jpg", seed=4)
    (root / "dog" / "notes.jpg").write_bytes(b"<html>404</html>")
    (root / "dog" / ".hidden.png").write_bytes(b"")
    (root / "dog" / "readme.txt").write_text("not an image suffix")
    return root


def test_image_folder_scan(tree):
    with pytest.warns(UnreadableImageWarning) as record:
        ds = ImageFolderDataset(tree, image_size=32)
    assert [str(w.message) for w in record] == [f"skipped 1 unreadable image file of 6 under {tree}: dog/notes.jpg"]
    assert ds.classes == ("cat", "dog") and ds.num_classes == 2
    assert [str(p.relative_to(tree)) for p in ds.files] == ["cat/0.png", "cat/1.png", "cat/2.png", "dog/0.JPEG", "dog/sub/1.jpg"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]
    x, y = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y.item() == 0
    assert torch.equal(x, uint8_to_unit(adm_center_crop(Image.open(tree / "cat" / "0.png"), 32)))


def test_image_folder_substitutes_undecodable_files_once(tree):
    with pytest.warns(UnreadableImageWarning):
        ds = ImageFolderDataset(tree, image_size=32)
    with pytest.warns(UnreadableImageWarning, match=re.escape(f"cannot decode {tree / 'cat' / '2.png'}")) as record:
        x, y = ds[2]
        x2, y2 = ds[2]  # known bad: no second warning
    assert len(record) == 1
    assert y.item() == 1 and torch.equal(x, ds[3][0]) and torch.equal(x, x2)
    assert ds.load_failures == [str(tree / "cat" / "2.png")]


def test_image_folder_without_header_check_and_all_bad_at_load(tmp_path):
    root = tmp_path / "bad"
    (root / "a").mkdir(parents=True)
    for i in range(2):
        (root / "a" / f"{i}.png").write_bytes(b"garbage")
    with raises(ValueError, f"none of the 2 image files under {root} can be read (a/0.png, a/1.png)"):
        ImageFolderDataset(root)
    ds = ImageFolderDataset(root, check_headers=False)
    with pytest.warns(UnreadableImageWarning), raises(ValueError, f"none of the 2 image files under {root} can be decoded"):
        ds[0]


def test_image_folder_hflip_and_classes(tree):
    with pytest.warns(UnreadableImageWarning):
        ds = ImageFolderDataset(tree, image_size=16, hflip=True, classes=["dog"])
    assert len(ds) == 4 and ds.labels.tolist() == [0, 0, 0, 0] and ds.classes == ("dog",)
    assert torch.equal(ds[2][0], ds[0][0].flip(-1))


def test_image_folder_bad_input(tmp_path, tree):
    with raises(FileNotFoundError, f"ImageFolderDataset: root={str(tmp_path / 'missing')!r} does not exist"):
        ImageFolderDataset(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with raises(ValueError, f"ImageFolderDataset: root={str(tmp_path / 'empty')!r} is empty; expected one subfolder per class"):
        ImageFolderDataset(tmp_path / "empty")
    with raises(ValueError, f"ImageFolderDataset: root={str(tree / 'cat')!r} has no class subfolders (3 files directly inside)"):
        ImageFolderDataset(tree / "cat")
    with raises(ValueError, f"ImageFolderDataset: root={str(tree / 'cat' / '0.png')!r} is a file, not a folder"):
        ImageFolderDataset(tree / "cat" / "0.png")
    (tree / "emu").mkdir()
    with raises(ValueError, f"ImageFolderDataset: class folder {tree / 'emu'} has no image files (.jpg, .jpeg"):
        ImageFolderDataset(tree)
    with raises(ValueError, f"ImageFolderDataset: no class folder 'owl' in {tree}"):
        ImageFolderDataset(tree, classes=["cat", "owl"])


# ---------------------------------------------------------------- CelebA

@pytest.fixture
def celeba(tmp_path):
    images = tmp_path / "celeba" / "img_align_celeba"
    images.mkdir(parents=True)
    for i in range(1, 6):
        random_image(images / f"{i:06d}.jpg", size=(178, 218), seed=i)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text(
        "000001.jpg 0\n000002.jpg 0\n000003.jpg 0\n000004.jpg 1\n000005.jpg 2\n")
    return images


def test_celeba_crop_and_splits(celeba):
    ds = CelebA64Dataset(celeba.parent)  # the parent of img_align_celeba works too
    assert len(ds) == 3 and ds.num_classes is None and ds.sample_shape == (3, 64, 64)
    x, y = ds[1]
    with Image.open(celeba / "000002.jpg") as im:
        expected = np.asarray(im.convert("RGB").crop((19, 39, 159, 179)).resize((64, 64), Image.BILINEAR))
    assert torch.equal(x, uint8_to_unit(expected)) and y.item() == 0 and y.dtype == torch.int64
    assert [p.name for p in CelebA64Dataset(celeba, split="val").files] == ["000004.jpg"]
    assert [p.name for p in CelebA64Dataset(celeba, split="test").files] == ["000005.jpg"]
    assert len(CelebA64Dataset(celeba, split="all", hflip=True)) == 10
    bicubic = CelebA64Dataset(celeba, resample="bicubic")[1][0]
    assert not torch.equal(bicubic, x) and (bicubic - x).abs().mean() < 0.1


def test_celeba_bad_input(tmp_path, celeba):
    with raises(FileNotFoundError, f"CelebA64Dataset: root={str(tmp_path / 'nope')!r} is not a folder; point it to "
                "CelebA's img_align_celeba folder"):
        CelebA64Dataset(tmp_path / "nope")
    (celeba.parent / "list_eval_partition.txt").unlink()
    with raises(FileNotFoundError, "a split other than 'all' needs CelebA's list_eval_partition.txt"):
        CelebA64Dataset(celeba)
    assert len(CelebA64Dataset(celeba, split="all")) == 5
    random_image(celeba / "000006.jpg", size=(100, 120))
    with raises(ValueError, f"{celeba / '000006.jpg'}: image is 100×120, smaller than the 140×140 center crop"):
        CelebA64Dataset(celeba, split="all")[5]
    with raises(ValueError, "resample must be one of 'bilinear', 'bicubic', got 'nearest'"):
        CelebA64Dataset(celeba, split="all", resample="nearest")
    (tmp_path / "none").mkdir()
    with raises(ValueError, f"CelebA64Dataset: root={str(tmp_path / 'none')!r} has no image files"):
        CelebA64Dataset(tmp_path / "none", split="all")


def test_celeba_crop_function():
    img = Image.fromarray(np.arange(218 * 178 * 3, dtype=np.uint32).reshape(218, 178, 3).astype(np.uint8))
    assert celeba_crop(img, size=140).shape == (140, 140, 3)
    assert np.array_equal(celeba_crop(img, size=140), np.asarray(img)[39:179, 19:159])


# ---------------------------------------------------------------- latents

def write_meta(root: Path, **meta):
    (root / LATENT_META).write_text(json.dumps({"scale": SD_VAE_SCALE, **meta}))


def latents(n, seed=0):
    return torch.randn(n, 4, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_latent_files_with_class_names_and_formats(tmp_path):
    from safetensors.torch import save_file
    z = latents(3)
    np.save(tmp_path / "n02_b.npy", z[0].numpy())
    torch.save(z[1].clone(), tmp_path / "n01_a.pt")
    save_file({"latent": z[2].contiguous()}, str(tmp_path / "n03_c.safetensors"))
    write_meta(tmp_path)
    ds = LatentDataset(tmp_path)
    assert ds.classes == ("n01", "n02", "n03") and ds.num_classes == 3 and ds.sample_shape == (4, 32, 32)
    assert [p.name for p in ds.files] == ["n01_a.pt", "n02_b.npy", "n03_c.safetensors"]
    assert ds.labels.tolist() == [0, 1, 2]
    for i, j in enumerate((1, 0, 2)):
        x, y = ds[i]
        assert torch.equal(x, z[j]) and y.item() == i and x.dtype == torch.float32


def test_latent_files_numeric_names_index_files_and_rescaling(tmp_path):
    z = latents(3)
    for i, name in enumerate(("3_x.npy", "0_y.npy", "1_z.npy")):
        np.save(tmp_path / name, z[i].numpy())
    write_meta(tmp_path, scale=1, num_classes=10)
    ds = LatentDataset(tmp_path)
    assert ds.labels.tolist() == [0, 1, 3] and ds.num_classes == 10
    assert torch.allclose(ds[2][0], z[0] * SD_VAE_SCALE)  # stored raw, returned scaled
    (tmp_path / "labels.csv").write_text("file,label\n3_x.npy,7\n0_y.npy,8\n1_z.npy,9\n")
    assert LatentDataset(tmp_path).labels.tolist() == [8, 9, 7]
    (tmp_path / "labels.json").write_text(json.dumps({"3_x.npy": 1, "0_y.npy": 1, "1_z.npy": 2}))
    assert LatentDataset(tmp_path, index_file=tmp_path / "labels.json").labels.tolist() == [1, 2, 1]
    assert LatentDataset(tmp_path, label_from="name").labels.tolist() == [0, 1, 3]
    none = LatentDataset(tmp_path, label_from="none")
    assert none.num_classes is None and none.labels.tolist() == [0, 0, 0]
    assert len(LatentDataset(tmp_path, hflip=True)) == 6


def test_latent_shards_and_label_checks(tmp_path):
    z = latents(5)
    np.savez(tmp_path / "shard_00000.npz", latents=z[:3].numpy(), labels=np.array([0, 1, 2]))
    np.savez(tmp_path / "shard_00001.npz", latents=z[3:].numpy(), labels=np.array([3, 12]))
    write_meta(tmp_path, count=5)
    with raises(ValueError, "label 12 of shard_00001.npz row 1 is outside [0, 10) (num_classes=10)"):
        LatentDataset(tmp_path, num_classes=10)
    ds = LatentDataset(tmp_path)  # K from the labels found
    assert ds.num_classes == 13 and len(ds) == 5 and torch.equal(ds[4][0], z[4])
    write_meta(tmp_path, count=6)
    with raises(ValueError, "holds 5 latents in 2 shards but latents.json announces 6: the encoding is incomplete"):
        LatentDataset(tmp_path)
    write_meta(tmp_path, shape=[4, 16, 16])
    with raises(ValueError, "holds latents of shape (4, 32, 32) but latents.json says (4, 16, 16)"):
        LatentDataset(tmp_path)
    np.savez(tmp_path / "shard_00002.npz", latents=z[:1].numpy())
    write_meta(tmp_path)
    with raises(ValueError, "shard_00002.npz must hold the arrays 'latents' and 'labels', found ['latents']"):
        LatentDataset(tmp_path)


def test_latent_bad_input(tmp_path):
    with raises(FileNotFoundError, f"LatentDataset: root={str(tmp_path / 'x')!r} is not a folder"):
        LatentDataset(tmp_path / "x")
    np.save(tmp_path / "noclass.npy", latents(1)[0].numpy())
    with raises(FileNotFoundError, f"{tmp_path / LATENT_META} is missing: it records the factor the stored latents were multiplied by"):
        LatentDataset(tmp_path)
    write_meta(tmp_path, scale=0)
    with raises(ValueError, "'scale' must be a positive number, got 0"):
        LatentDataset(tmp_path)
    write_meta(tmp_path)
    with raises(ValueError, "cannot take a class from the file name 'noclass.npy': expected <class>_<id>.npy"):
        LatentDataset(tmp_path)
    (tmp_path / "labels.csv").write_text("other.npy,1\n")
    with raises(ValueError, f"noclass.npy has no label in {tmp_path / 'labels.csv'}"):
        LatentDataset(tmp_path)
    (tmp_path / "labels.csv").write_text("noclass.npy,-1\n")
    with raises(ValueError, "label -1 of noclass.npy is outside [0, ∞) (num_classes=None)"):
        LatentDataset(tmp_path)
    with raises(ValueError, "label -1 of noclass.npy is outside [0, 4) (num_classes=4)"):
        LatentDataset(tmp_path, num_classes=4)
    with raises(FileNotFoundError, "LatentDataset: no index file"):
        LatentDataset(tmp_path, label_from="index", index_file=tmp_path / "missing.csv")
    (tmp_path / "labels.csv").unlink()
    np.save(tmp_path / "noclass.npy", np.zeros((4, 8, 8), dtype=np.float32))
    np.save(tmp_path / "zz.npy", np.zeros((4, 16, 16), dtype=np.float32))
    ds = LatentDataset(tmp_path, label_from="none")
    with raises(ValueError, f"{tmp_path / 'zz.npy'} holds a latent of shape (4, 16, 16), expected (4, 8, 8)"):
        ds[1]
    empty = tmp_path / "empty"
    empty.mkdir()
    write_meta(empty)
    with raises(ValueError, f"LatentDataset: {empty} has neither shards"):
        LatentDataset(empty)


# ---------------------------------------------------------------- VAE round trip

@pytest.fixture(scope="module")
def vae_dir(tmp_path_factory):
    from diffusers import AutoencoderKL
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vae") / "sd-vae"
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                  norm_num_groups=8, sample_size=32).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def images():
    ds = PhotoPatchesDataset("val", patch_size=16, crops_per_photo=3)  # 18 images, labels 0…5
    return ds


def test_encode_round_trip_and_resume(tmp_path, vae_dir, images):
    out = encode_latents(images, vae_dir, tmp_path / "lat", batch_size=4, shard_size=7)
    assert sorted(p.name for p in out.iterdir()) == ["latents.json"] + [f"shard_{k:05d}.safetensors" for k in range(3)]
    meta = json.loads((out / LATENT_META).read_text())
    assert meta["scale"] == SD_VAE_SCALE and meta["complete"] is True and meta["count"] == 18
    assert meta["shape"] == [4, 8, 8] and meta["num_classes"] == 6 and meta["classes"] == list(PHOTOS)
    ds = LatentDataset(out)
    assert len(ds) == 18 and ds.sample_shape == (4, 8, 8) and ds.num_classes == 6 and ds.classes == PHOTOS
    assert ds.labels.tolist() == images.labels.tolist()
    # the stored latent is 0.18215 × (mean + std·ε): with posterior='mean' it is the scaled mean exactly
    vae = load_vae(vae_dir)
    mean = encode_latents(images, vae, tmp_path / "mean", posterior="mean", shard_size=18)
    with torch.no_grad():
        dist = vae.encode(torch.stack([images[i][0] for i in range(18)])).latent_dist
    expected = dist.mean * SD_VAE_SCALE
    assert torch.allclose(LatentDataset(mean)._latents, expected, atol=1e-6)
    assert not torch.allclose(ds._latents, expected, atol=1e-4)  # a draw, not the mean
    eps = (ds._latents / SD_VAE_SCALE - dist.mean) / dist.std  # the draw's noise: a fresh one per image
    assert eps.std() > 0.5 and not torch.allclose(eps[0], eps[1], atol=0.1)
    reseeded = encode_latents(images, vae, tmp_path / "seed1", seed=1, shard_size=18)
    assert not torch.allclose(LatentDataset(reseeded)._latents, ds._latents, atol=1e-4)
    # interrupted run: a missing shard is re-encoded, identically; other batch/shard sizes give the same latents
    first = ds._latents.clone()
    (out / "shard_00001.safetensors").unlink()
    (out / "shard_00002.safetensors").write_bytes(b"sentinel: an existing shard is not rewritten")
    encode_latents(images, vae_dir, out, batch_size=4, shard_size=7)
    assert (out / "shard_00002.safetensors").read_bytes().startswith(b"sentinel")
    from minsnr.data import _read_shard
    assert torch.equal(_read_shard(out / "shard_00001.safetensors")[0], first[7:14])
    other = encode_latents(images, vae, tmp_path / "other", batch_size=5, shard_size=18, shard_format="npz")
    assert torch.allclose(LatentDataset(other)._latents, first, atol=1e-5)
    decoded = decode_latents(ds[0][0][None], vae)
    assert decoded.shape == (1, 3, 16, 16) and decoded.dtype == torch.float32
    assert decoded.min() >= -1 and decoded.max() <= 1


def test_encode_refuses_other_settings_and_bad_vae_dirs(tmp_path, vae_dir, images):
    small = Subset(images, range(4))
    encode_latents(small, vae_dir, tmp_path / "lat", shard_size=2)
    with raises(ValueError, f"{tmp_path / 'lat'} holds latents encoded with shard_size=2, not 4; use another out_dir"):
        encode_latents(small, vae_dir, tmp_path / "lat", shard_size=4)
    with raises(FileNotFoundError, f"vae_dir={str(tmp_path / 'sd-vae')!r} does not exist: download the SD-VAE weights "
                "(the stabilityai/sd-vae-ft-mse repository on the Hugging Face Hub)"):
        encode_latents(small, tmp_path / "sd-vae", tmp_path / "x")
    (tmp_path / "empty-vae").mkdir()
    with raises(FileNotFoundError, "has no config.json, so it is not a diffusers VAE folder"):
        load_vae(tmp_path / "empty-vae")
    with raises(ValueError, "vae_dir is required"):
        load_vae(None)
    with raises(ValueError, "posterior must be one of 'sample', 'mean', got 'mode'"):
        encode_latents(small, vae_dir, tmp_path / "y", posterior="mode")
    with raises(ValueError, "shard_format must be one of 'safetensors', 'npz', got 'zip'"):
        encode_latents(small, vae_dir, tmp_path / "y", shard_format="zip")
    with raises(ValueError, "batch_size must be an integer ≥ 1, got 0"):
        encode_latents(small, vae_dir, tmp_path / "y", batch_size=0)


def test_encode_keeps_unconditional_datasets_unconditional(tmp_path, vae_dir, images):
    small = Subset(images, range(3))  # a Subset has no num_classes: K is inferred from the labels
    assert LatentDataset(encode_latents(small, vae_dir, tmp_path / "a")).num_classes == 1
    small.num_classes = None  # an unconditional dataset, like CelebA64Dataset
    out = encode_latents(small, vae_dir, tmp_path / "b")
    assert json.loads((out / LATENT_META).read_text())["num_classes"] is None
    ds = LatentDataset(out)
    assert ds.num_classes is None and ds.labels.tolist() == [0, 0, 0]


# ---------------------------------------------------------------- registry

def test_make_dataset(tmp_path, tree, celeba):
    assert set(DATASETS) == {"digits", "photo-patches", "imagefolder", "celeba64", "latents"}
    assert len(make_dataset("digits", split="val")) == 359
    assert isinstance(make_dataset("Photo_Patches", crops_per_photo=1), PhotoPatchesDataset)
    assert make_dataset("imagefolder", tree, check_headers=False).classes == ("cat", "dog")
    split_root = tmp_path / "splits"
    (split_root / "val" / "owl").mkdir(parents=True)
    random_image(split_root / "val" / "owl" / "a.png")
    assert make_dataset("imagefolder", split_root, split="val").classes == ("owl",)
    assert len(make_dataset("celeba64", celeba, split="val")) == 1
    assert len(make_dataset("celeba64", str(celeba), "all", hflip=True)) == 10
    with raises(ValueError, "unknown dataset 'cifar10'; valid choices: 'digits', 'photo-patches', 'imagefolder', "
                "'celeba64', 'latents'"):
        make_dataset("cifar10")
    for name in ("imagefolder", "celeba64", "latents"):
        with raises(ValueError, f"dataset {name!r} reads local files: pass root=<folder>"):
            make_dataset(name)
    with raises(ValueError, "dataset 'digits' is bundled and takes no root, got root='data'"):
        make_dataset("digits", root="data")
    with raises(FileNotFoundError, f"no folder {tree / 'val'} for split='val'"):
        make_dataset("imagefolder", tree, split="val")


# ---------------------------------------------------------------- sampler

def take(sampler, count):
    return list(islice(iter(sampler), count))


@pytest.mark.parametrize("n,W,b", [(10, 3, 2), (7, 2, 1), (16, 4, 4), (5, 1, 3), (3, 4, 2)])
def test_sampler_ranks_rebuild_the_single_process_stream(n, W, b):
    steps = 9
    single = take(ShardedInfiniteSampler(n, seed=11), steps * W * b)
    ranks = [take(ShardedInfiniteSampler(n, r, W, seed=11, batch_size=b), steps * b) for r in range(W)]
    strided = [take(ShardedInfiniteSampler(n, r, W, seed=11), steps * b) for r in range(W)]
    for k in range(steps):
        batch = single[k * W * b:(k + 1) * W * b]
        assert sum((rk[k * b:(k + 1) * b] for rk in ranks), []) == batch  # exact, rank-major
        assert sorted(sum((s[k * b:(k + 1) * b] for s in strided), [])) == sorted(batch)  # as a set
    for e in range(len(single) // n):  # every epoch is a permutation, and the epochs differ
        assert sorted(single[e * n:(e + 1) * n]) == list(range(n))


def test_sampler_shards_are_disjoint_within_an_epoch():
    n, W = 1000, 4
    first_epoch = [take(ShardedInfiniteSampler(n, r, W, seed=0), n // W) for r in range(W)]
    assert all(len(set(a) & set(b)) == 0 for i, a in enumerate(first_epoch) for b in first_epoch[i + 1:])
    assert sorted(sum(first_epoch, [])) == list(range(n))
    s = ShardedInfiniteSampler(n, seed=0)
    assert not np.array_equal(s.permutation(0), s.permutation(1))
    assert np.array_equal(s.permutation(3), ShardedInfiniteSampler(n, seed=0).permutation(3))


def test_sampler_resume_equals_uninterrupted():
    n, W, b = 13, 3, 2
    full = take(ShardedInfiniteSampler(n, 2, W, seed=4, batch_size=b), 40)
    head = take(ShardedInfiniteSampler(n, 2, W, seed=4, batch_size=b), 16)
    assert head == full[:16]
    by_index = ShardedInfiniteSampler(n, 2, W, seed=4, batch_size=b, start_index=16 * W)
    assert take(by_index, 24) == full[16:]
    # the global stream does not depend on W: resume a 3-rank run on 1 process
    single = take(ShardedInfiniteSampler(n, seed=4), 120)
    assert take(ShardedInfiniteSampler(n, seed=4, start_index=48), 72) == single[48:]


def test_sampler_keeps_no_state_between_iterations():
    "Every iter() starts again at start_index: the trainer, not the sampler, knows where a run is."
    s = ShardedInfiniteSampler(10, 0, 2, seed=1, start_index=4)
    assert take(s, 5) == take(s, 5) == take(ShardedInfiniteSampler(10, seed=1), 14)[4::2][:5]


def test_loader_with_workers_is_deterministic():
    ds = PhotoPatchesDataset("val", crops_per_photo=8, hflip=True)

    def batches(workers):
        loader = DataLoader(ds, batch_size=6, num_workers=workers,
                            sampler=ShardedInfiniteSampler(len(ds), 1, 2, seed=3, batch_size=6))
        return list(islice(iter(loader), 4))

    a, b = batches(0), batches(2)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert a[0][0].shape == (6, 3, 32, 32) and a[0][1].dtype == torch.int64


@pytest.mark.parametrize("name, options", [("digits", {}), ("digits", {"hflip": True}), ("photo-patches", {})])
def test_batch_is_the_stack_of_the_items(name, options):
    "`batch` gathers in one go what stacking each `ds[i]` gives, negative and mirrored indices included; a bad index is refused."
    ds = make_dataset(name, split="train", **options)
    index = torch.randint(-len(ds), len(ds), (200,), generator=torch.Generator().manual_seed(0)).tolist()
    x, y = ds.batch(index)
    assert torch.equal(x, torch.stack([ds[i][0] for i in index])) and torch.equal(y, torch.stack([ds[i][1] for i in index]))
    with pytest.raises(IndexError, match=f"index {len(ds)} is out of range for a dataset of {len(ds)} items"):
        ds.batch([0, len(ds)])
