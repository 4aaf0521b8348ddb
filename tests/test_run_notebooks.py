"""The papermill run notebooks execute end to end with tiny parameters (the real runs are for a GPU box)."""
import json
from pathlib import Path

import papermill
import pytest
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # every test runs a notebook through papermill
TINY = {"depth": 1, "embed_dim": 32, "num_heads": 2}


def run(name: str, tmp_path: Path, **parameters) -> dict:
    out = tmp_path / f"{name}.out.ipynb"
    papermill.execute_notebook(str(ROOT / "nbs" / f"{name}.ipynb"), str(out), parameters=parameters,
                               cwd=str(tmp_path), kernel_name="python3", progress_bar=False)
    return json.loads(out.read_text())


def test_train_digits_runs_and_resumes(tmp_path):
    few = dict(sample_steps=2, grid_per_class=1, eval_per_class=3)  # the pictures and the scores, cheaply
    small = dict(global_batch=16, log_every=1, ckpt_every=2)  # the rest is configs/digits.yaml's
    nb = run("train_digits", tmp_path, steps=4, out_dir=str(tmp_path / "digits"), overrides=small, **few)
    assert (tmp_path / "digits" / "ema.safetensors").exists()
    assert any(o.get("output_type") == "display_data" for c in nb["cells"] for o in c.get("outputs", []))  # the plots
    printed = "".join(t for c in nb["cells"] for o in c.get("outputs", []) for t in o.get("text", []))
    assert "FD-digits of 30 EMA samples" in printed and "class accuracy of the samples" in printed
    shown = "".join(t for c in nb["cells"] for o in c.get("outputs", []) for t in o.get("data", {}).get("text/markdown", []))
    assert "| `steps` | `4` | given here (the recipe: 1500) |" in shown  # the recipe table, with the overrides marked
    config = json.loads((tmp_path / "digits" / "config.json").read_text())
    assert (config["lr"], config["ema_decay"], config["global_batch"]) == (1e-3, 0.995, 16)  # the file's, and an override
    run("train_digits", tmp_path, steps=6, out_dir=str(tmp_path / "digits"), overrides=small, **few)  # re-running resumes
    steps = [json.loads(l)["step"] for l in (tmp_path / "digits" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 6


def random_latents(folder: Path, n=24, num_classes=1000) -> Path:
    folder.mkdir()
    g = torch.Generator().manual_seed(0)
    save_file({"latents": torch.randn(n, 4, 32, 32, generator=g), "labels": torch.randint(0, num_classes, (n,), generator=g)},
              str(folder / "shard_00000.safetensors"))
    (folder / "latents.json").write_text(json.dumps({"scale": 0.18215, "num_classes": num_classes}))
    return folder


def test_train_in256_end_to_end_on_random_latents(tmp_path):
    data = random_latents(tmp_path / "latents")
    small = dict(model_kwargs=TINY, global_batch=8, compile=False, num_workers=0, precision="bf16", log_every=1, ckpt_every=2)
    run("train_in256", tmp_path, data_dir=str(data), steps=2, overrides=small, out_dir=str(tmp_path / "in256"))
    config = json.loads((tmp_path / "in256" / "config.json").read_text())
    assert config["model"] == "vit_b" and config["target"] == "x0" and config["weighting"] == "min-snr"
    assert config["betas"] == [0.99, 0.99] and config["weight_decay"] == 0.03 and config["class_drop_prob"] == 0.15
    assert (tmp_path / "in256" / "ema.safetensors").exists()


@pytest.mark.parametrize("name", ["train_in256", "train_in64", "train_celeba64"])
def test_missing_data_dir_is_a_clear_error(tmp_path, name):
    with pytest.raises(papermill.PapermillExecutionError, match="data_dir=None: pass the"):
        run(name, tmp_path)


def test_encode_latents_with_a_small_random_vae(tmp_path):
    from diffusers import AutoencoderKL
    from PIL import Image
    torch.manual_seed(0)
    AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                  norm_num_groups=8, sample_size=32).save_pretrained(tmp_path / "vae")
    for cls in ("n01", "n02"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray((torch.rand(40, 48, 3) * 255).byte().numpy()).save(tmp_path / "images" / cls / f"{i}.png")
    run("encode_latents", tmp_path, image_dir=str(tmp_path / "images"), vae_dir=str(tmp_path / "vae"),
        out_dir=str(tmp_path / "latents"), image_size=32, batch_size=4, device="cpu", dtype="float32", num_workers=0)
    from minsnr.data import LatentDataset
    latents = LatentDataset(tmp_path / "latents")
    assert len(latents) == 6 and latents.num_classes == 2 and tuple(latents[0][0].shape) == (4, 16, 16)


def test_encode_latents_without_vae_dir(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="vae_dir=None: pass it"):
        run("encode_latents", tmp_path, image_dir=str(tmp_path), out_dir=str(tmp_path / "o"))


def test_sample_fid_on_a_digits_run(tmp_path, random_inception_weights):
    from minsnr.fid import save_reference_stats
    from minsnr.trainer import TrainConfig, train
    train(TrainConfig(dataset="digits", model="vit_tiny", model_kwargs=TINY, global_batch=8, steps=2, log_every=1,
                      ckpt_every=2, out_dir=str(tmp_path / "run"), progress=False))
    weights = random_inception_weights  # random weights (tests/conftest.py): exercises the path, not a real FID
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2048, 2048, generator=g, dtype=torch.float64) / 64
    save_reference_stats(tmp_path / "ref.npz", torch.randn(2048, generator=g, dtype=torch.float64).numpy(), (a @ a.T).numpy())
    run("sample_fid", tmp_path, run_dir=str(tmp_path / "run"), num_images=6, num_steps=3, batch_size=4,
        reference=str(tmp_path / "ref.npz"), inception_weights=str(weights))
    metrics = json.loads((tmp_path / "run" / "samples_3steps_cfg1.5" / "metrics.json").read_text())
    assert metrics["FD-digits"] > 0 and 0 <= metrics["class_accuracy"] <= 1 and metrics["FID"] > 0
    assert len(list((tmp_path / "run" / "samples_3steps_cfg1.5").glob("*.png"))) == 6


def test_sample_fid_without_a_run(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError, match="run_dir=None: pass a finished training run"):
        run("sample_fid", tmp_path)
