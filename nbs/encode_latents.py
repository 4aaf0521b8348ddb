# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: python3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Encoding ImageNet-256 into SD-VAE latents
#
# The paper's ImageNet-256 models train on 32×32×4 latents of the Stable Diffusion VAE (`sd-vae-ft-mse`, scale 0.18215).
# This notebook turns an ImageNet-style class-folder tree into those latents once, with ADM's centre crop at 256×256 and
# (optionally) horizontally flipped copies, in resumable shards that `train_in256.ipynb` reads. Nothing is downloaded:
# `vae_dir` must be a local copy of `stabilityai/sd-vae-ft-mse` (made on a machine with network access).
#
# ```bash
# papermill nbs/encode_latents.ipynb runs/encode.ipynb -p image_dir /data/imagenet/train -p vae_dir /models/sd-vae-ft-mse \
#     -p out_dir /data/in256_latents -p device cuda
# ```
#
# Re-running continues after the last complete shard.

# %% tags=["parameters"]
image_dir = None  # ImageNet train folder with one sub-folder per class (required)
vae_dir = None  # local folder of the SD-VAE (config.json + weights) (required)
out_dir = None  # where the latent shards go (required)
image_size = 256  # ADM centre crop size; the latents are image_size / 8
hflip = False  # also encode mirrored images (doubles the data, as EDM's xflip)
batch_size = 64  # images per encoder call
device = "cuda"  # where the VAE runs
dtype = "float16"  # encoder compute dtype: 'float32', 'float16' or 'bfloat16'
posterior = "sample"  # store a draw from the VAE posterior (DiT, LDM) or its 'mean'
shard_size = 4096  # latents per shard (the unit of resumption)
num_workers = 8  # image-decoding processes
seed = 0  # seed of the posterior draws

# %%
import torch

from minsnr.data import LatentDataset, encode_latents, make_dataset

for name, value in (("image_dir", image_dir), ("vae_dir", vae_dir), ("out_dir", out_dir)):
    if value is None: raise ValueError(f"{name}=None: pass it with -p {name} …")
images = make_dataset("imagefolder", image_dir, image_size=image_size, hflip=hflip)
print(f"{len(images)} images in {images.num_classes} classes")
folder = encode_latents(images, vae_dir, out_dir, batch_size=batch_size, device=device, dtype=getattr(torch, dtype),
                        posterior=posterior, shard_size=shard_size, num_workers=num_workers, seed=seed, progress=True)
latents = LatentDataset(folder)
x, y = latents[0]
print(f"{len(latents)} latents of shape {tuple(x.shape)}, {latents.num_classes} classes, std {x.std():.3f}")
