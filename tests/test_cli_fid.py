"""`minsnr-fid`: the arguments of `score_images` parsed by type, help, one-line errors with exit code 2, FD of a folder."""
import json

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from minsnr.cli import fid_main, params_of
from minsnr.data import DigitsDataset
from minsnr.fid import score_images


def run(argv, capsys): return run_cli(fid_main, argv, capsys)


def write_pngs(folder, arrays):
    folder.mkdir(parents=True, exist_ok=True)
    for i, a in enumerate(arrays): Image.fromarray(a).save(folder / f"{i:06d}.png")
    return folder


@pytest.fixture(scope="module")
def digit_pngs(tmp_path_factory):
    "200 real 8×8 digits as PNGs (validation split)."
    ds = DigitsDataset(split="val")
    arrays = [((ds[i][0][0].numpy() + 1) * 127.5).round().astype(np.uint8) for i in range(min(200, len(ds)))]
    return write_pngs(tmp_path_factory.mktemp("digits"), arrays)


FIELDS = ", ".join(p.name for p in params_of(score_images))
BAD = {  # argv → the exact error line (after "minsnr-fid: error: ")
    "required": ([], "missing required field(s) images: give images=…"),
    "unknown": (["images=x", "refrence=a.npz"], f"unknown field 'refrence' (did you mean reference?); valid fields: {FIELDS}"),
    "int": (["images=x", "batch_size=ten"], "batch_size=ten: expected an integer"),
    "repeated": (["images=x", "images=y"], "images given twice (images=x and images=y): give each field once"),
    "labels": (["images=x", "labels=1,two"], "labels=1,two: expected list[int] or null"),
    "empty": (["images="], "images= has no value: give images=<value> (str | Path), or leave it out for the default"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_with_exit_code_2(case, capsys):
    argv, message = BAD[case]
    code, out, err = run(argv, capsys)
    assert (code, err, out) == (2, f"minsnr-fid: error: {message}\n", "")


@pytest.mark.parametrize("argv, fragments", [  # score_images' own checks, before any image is scored
    (["images=DIGITS", "metric=fd-mnist"], ["'fd-mnist'", "'fd-digits'", "'fid'"]),
    (["images=/no/such/folder"], ["/no/such/folder"]),
    (["images=ONE"], ["1 image", "at least 2"]),
    (["images=DIGITS", "metric=fid"], ["reference="]),
    (["images=DIGITS", "metric=fid", "reference=/no/such.npz"], ["/no/such.npz"]),
    (["images=DIGITS", "reference=test"], ["'test'", "'train'", "'val'"]),
], ids=["metric", "missing folder", "one image", "fid without reference", "missing reference", "split"])
def test_score_images_checks_are_one_line_with_exit_code_2(argv, fragments, digit_pngs, tmp_path, capsys):
    one = write_pngs(tmp_path / "one", [np.zeros((8, 8), np.uint8)])
    argv = [a.replace("DIGITS", str(digit_pngs)).replace("ONE", str(one)) for a in argv]
    code, out, err = run(argv, capsys)
    assert code == 2 and err.startswith("minsnr-fid: error: ") and err.count("\n") == 1 and out == "", err
    assert "Traceback" not in err and all(f in err for f in fragments), err


def test_fd_digits_of_digits_is_far_below_that_of_noise(digit_pngs, tmp_path, capsys):
    code, out, err = run([f"images={digit_pngs}"], capsys)
    assert code == 0, err
    real = json.loads(out)
    noise = write_pngs(tmp_path / "noise", np.random.default_rng(0).integers(0, 256, (200, 8, 8), dtype=np.uint8))
    code, out, err = run([f"images={noise}", "metric=fd-digits"], capsys)
    assert code == 0, err
    fake = json.loads(out)
    assert real["num_images"] == fake["num_images"] == 200
    assert 0 <= real["FD-digits"] < fake["FD-digits"] / 10, (real, fake)


def test_help_lists_every_argument(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == 0
    for p in params_of(score_images): assert f"\n  {p.name}=" in out and p.doc in out, p.name
