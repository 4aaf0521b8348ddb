"""The recipes in configs/: each loads into a valid TrainConfig, names a preset of the paper's architecture, and holds
the values that the paper (Hang et al. 2023, arXiv 2303.09556v3) and the official training script give; a bad key is
a one-line error naming it and the valid fields."""
import dataclasses
from pathlib import Path

import pytest

from minsnr import unet, vit
from minsnr.cli import load_train_config, load_yaml, recipe_notes, recipe_table
from minsnr.trainer import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"

# Written from the paper, not read from the files. Section 4.1: lr 1e-4, batch 1024 (ImageNet-64), 256 (ImageNet-256),
# 128 and a 5000-step warm-up (CelebA), cosine schedule, T = 1000, EMA 0.9999; Section 4.2: γ = 5; Section 4.3: label
# dropout 0.15, 800K steps (ImageNet-64), about 7M (ViT-XL, FID 2.06), 500K (CelebA); Appendix C.2: betas.
VIT_BETAS, UNET_BETAS = (0.99, 0.99), (0.9, 0.999)
PAPER = {
    "in256_vit_b2.yaml": dict(dataset="latents", model="vit_b", target="x0", global_batch=256, betas=VIT_BETAS,
                              class_drop_prob=0.15, warmup_steps=0, steps=1_000_000),
    "in256_vit_xl2.yaml": dict(dataset="latents", model="vit_xl", target="x0", global_batch=256, betas=VIT_BETAS,
                               class_drop_prob=0.15, warmup_steps=0, steps=7_000_000),
    "in64_vit_l4.yaml": dict(dataset="imagefolder", model="vit_l", target="eps", global_batch=1024, betas=VIT_BETAS,
                             class_drop_prob=0.15, warmup_steps=0, steps=800_000),
    "celeba64_vit_s.yaml": dict(dataset="celeba64", model="vit_s", target="x0", global_batch=128, betas=VIT_BETAS,
                                class_drop_prob=0.0, warmup_steps=5000, steps=500_000),
    "celeba64_unet.yaml": dict(dataset="celeba64", model="unet_ablation", target="x0", global_batch=128, betas=UNET_BETAS,
                               class_drop_prob=0.0, warmup_steps=5000, steps=500_000),
}
COMMON = dict(weighting="min-snr", gamma=5.0, lr=1e-4, lr_schedule="constant", schedule="cosine", num_timesteps=1000,
              timestep_sampler="uniform", ema_decay=0.9999, ema_warmup_power=None, weight_decay=0.03, grad_clip=0.0)
# The run whose outputs nbs/train_digits.ipynb stores (its former keyword call).
DIGITS = dict(dataset="digits", model="vit_tiny", model_kwargs={}, target="x0", weighting="min-snr", gamma=5.0, lr=1e-3,
              global_batch=128, steps=1500, ema_decay=0.995, ema_warmup_power=None, seed=0, precision="fp32",
              log_every=15, ckpt_every=375, out_dir="runs/digits", progress=False, class_drop_prob=0.15)
# Appendix C.1 / Table 6 (the official vision_transformer.py names): width, depth, patch of each ViT; the ablation UNet.
ARCHITECTURES = {"vit_s": dict(embed_dim=384, depth=12, num_heads=6, patch_size=4),
                 "vit_b": dict(embed_dim=768, depth=12, num_heads=12, patch_size=2),
                 "vit_l": dict(embed_dim=1024, depth=21, num_heads=16, patch_size=4),
                 "vit_xl": dict(embed_dim=1152, depth=28, num_heads=16, patch_size=2),
                 "unet_ablation": dict(model_channels=192, channel_mult=(1, 2, 2, 2), num_res_blocks=3,
                                       attention_resolutions=(16, 8), num_heads=4)}
FILES = sorted(CONFIGS.glob("*.yaml"))


def load(path: Path, tmp_path: Path, **overrides) -> TrainConfig:
    "A recipe with the paths its user gives (the bundled digits need none)."
    given = {} if "digits" in path.name else {"data_dir": str(tmp_path), "out_dir": str(tmp_path / "run")}
    return load_train_config(path, **(given | overrides))


def test_configs_holds_the_papers_runs_and_the_digits():
    assert sorted(p.name for p in FILES) == sorted([*PAPER, "digits.yaml"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_recipe_loads_and_validates(path, tmp_path):
    config = load(path, tmp_path)
    assert isinstance(config, TrainConfig)
    assert config.model in vit.PRESETS or config.model in unet.PRESETS, config.model
    TrainConfig(**{f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)})  # its checks pass again


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_field_names_its_source(path):
    "Each line that sets a field carries a comment: where the value comes from."
    fields = set(load_yaml(path.read_text()))
    notes = recipe_notes(path)
    assert set(notes) == fields and all(len(n) > 3 for n in notes.values()), fields - set(notes)


@pytest.mark.parametrize("name", PAPER)
def test_the_papers_values(name, tmp_path):
    config = load(CONFIGS / name, tmp_path)
    expected = PAPER[name] | COMMON
    assert {k: getattr(config, k) for k in expected} == expected
    if config.model.startswith("vit"): assert config.betas == VIT_BETAS
    else: assert config.betas == UNET_BETAS


@pytest.mark.parametrize("name", PAPER)
def test_the_preset_is_the_papers_architecture(name, tmp_path):
    model = load(CONFIGS / name, tmp_path).model
    preset = {**vit.PRESETS, **unet.PRESETS}[model]
    assert {k: getattr(preset, k) for k in ARCHITECTURES[model]} == ARCHITECTURES[model]


def test_the_digits_recipe_is_the_stored_notebook_run():
    config = load_train_config(CONFIGS / "digits.yaml")
    assert {k: getattr(config, k) for k in DIGITS} == DIGITS


@pytest.mark.parametrize("name", PAPER)
def test_the_user_paths_are_left_to_the_user(name, tmp_path):
    raw = load_yaml((CONFIGS / name).read_text())
    assert raw["data_dir"] is None and raw["out_dir"] is None
    with pytest.raises(ValueError, match=f"^recipe {CONFIGS / name} leaves out_dir to you: give out_dir=…$"):
        load_train_config(CONFIGS / name, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="data_dir"):
        load_train_config(CONFIGS / name, out_dir=str(tmp_path))


def test_overrides_replace_the_files_values_and_are_typed(tmp_path):
    config = load(CONFIGS / "in256_vit_b2.yaml", tmp_path, steps="20", betas="0.9,0.999", precision="fp16", gamma=None)
    assert (config.steps, config.betas, config.precision, config.gamma) == (20, (0.9, 0.999), "fp16", None)
    assert config.model == "vit_b" and config.lr == 1e-4  # the rest is the file's


VALID = ", ".join(f.name for f in dataclasses.fields(TrainConfig))


def test_a_bad_key_in_a_recipe_names_it_and_the_valid_fields(tmp_path):
    (tmp_path / "bad.yaml").write_text("model: vit_b\nstepz: 10  # a typo\n")
    with pytest.raises(ValueError) as err:
        load_train_config(tmp_path / "bad.yaml")
    message = str(err.value)
    assert message == f"unknown field 'stepz' in recipe {tmp_path / 'bad.yaml'} (did you mean steps?); valid fields: {VALID}"
    assert "\n" not in message


def test_a_bad_override_names_it_and_the_valid_fields():
    with pytest.raises(ValueError) as err:
        load_train_config(CONFIGS / "digits.yaml", lerning_rate=1e-3)
    assert str(err.value) == f"unknown field 'lerning_rate'; valid fields: {VALID}"


@pytest.mark.parametrize("overrides, message", [
    ({"steps": 2.5}, "steps=2.5: expected an integer"),
    ({"precision": "fp8"}, "precision=fp8: expected one of 'auto', 'fp32', 'bf16', 'fp16'"),
    ({"gamma": -1.0}, "gamma"),  # TrainConfig's own check
])
def test_a_bad_override_value_is_one_line(overrides, message):
    with pytest.raises(ValueError, match=message) as err:
        load_train_config(CONFIGS / "digits.yaml", **overrides)
    assert "\n" not in str(err.value)


def test_a_recipe_is_found_from_another_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_train_config("configs/digits.yaml").steps == 1500
    with pytest.raises(FileNotFoundError, match="^recipe configs/nothing.yaml: no such file$"):
        load_train_config("configs/nothing.yaml")


def test_the_recipe_table_marks_the_overrides():
    table = recipe_table(CONFIGS / "celeba64_unet.yaml", data_dir="/data/celeba", steps=10)
    rows = table.splitlines()
    assert rows[0] == "| field | value | source |" and len(rows) == 2 + len(load_yaml((CONFIGS / "celeba64_unet.yaml").read_text()))
    assert "| `steps` | `10` | given here (the recipe: 500000) |" in rows
    assert "| `out_dir` | `to be given` | YOU GIVE IT:" in table
    assert any(r.startswith("| `betas` | `0.9,0.999` | Appendix C.2") for r in rows)
