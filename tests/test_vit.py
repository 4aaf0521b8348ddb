"""`minsnr.vit`: every preset's size (on the meta device), the calling convention, gradients, determinism, bad input."""
import pytest
import torch
from conftest import watched_flops

from minsnr.backbone import count_flops, count_params
from minsnr.vit import PRESETS, DiffusionViT, ViTConfig, vit, vit_b, vit_tiny

# parameters we expect, from the architecture (not copied from a run): per block 12·D² + 10·D (qkv without bias,
# proj, MLP 4·D with biases, two LayerNorms); plus patch embedding, position embedding, time MLP, class table, head
def expected_params(c: ViTConfig) -> int:
    D, p, C = c.embed_dim, c.patch_size, c.in_chans
    tokens = (c.img_size // p) ** 2 + 1 + (c.num_classes is not None)
    block = 12 * D * D + 10 * D
    time_mlp = 256 * D + D + D * D + D
    classes = 0 if c.num_classes is None else (c.num_classes + 1) * D
    return c.depth * block + (p * p * C * D + D) + tokens * D + time_mlp + classes + (D * p * p * C + p * p * C)


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_sizes_on_meta(name):
    with torch.device("meta"):
        model = vit(name)
    assert count_params(model) == expected_params(model.config)
    assert all(p.device.type == "meta" for p in model.parameters())


def test_paper_sizes():
    "Widths, heads and depths of the paper's / official configurations."
    sizes = {n: (c.embed_dim, c.num_heads, c.depth, c.patch_size) for n, c in PRESETS.items()}
    assert sizes["vit_s"] == (384, 6, 12, 4) and sizes["vit_b"] == (768, 12, 12, 2)
    assert sizes["vit_l"] == (1024, 16, 21, 4) and sizes["vit_xl"] == (1152, 16, 28, 2)


def closed_form_flops(c: ViTConfig) -> int:
    "Forward FLOPs from the shape: per block 24·N·D² (qkv, proj, MLP) + 4·N²·D (QKᵀ, weighted sum); patch embedding, head, time MLP."
    P = (c.img_size // c.patch_size) ** 2
    N, D = P + 1 + (c.num_classes is not None), c.embed_dim
    return c.depth * (24 * N * D * D + 4 * N * N * D) + 2 * 2 * P * D * c.in_chans * c.patch_size**2 + 2 * (256 * D + D * D)


@pytest.mark.parametrize("name", list(PRESETS))
def test_flops_of_every_preset_match_the_closed_form(name):
    with torch.device("meta"):
        model = vit(name)
    assert count_flops(model) == closed_form_flops(model.config)
    assert count_flops(model, batch_size=3) == 3 * count_flops(model)


big = pytest.mark.slow  # gigabytes of CPU weights
@pytest.mark.parametrize("name", [n if n in ("vit_tiny", "vit_s", "vit_b") else pytest.param(n, marks=big) for n in PRESETS])
def test_flops_do_not_depend_on_the_device(name):
    "A CPU model counts what its meta twin counts, and what a watched forward pass in the math attention form does."
    torch.manual_seed(0)
    cpu = vit(name)
    with torch.device("meta"):
        meta = vit(name)
    assert count_flops(cpu) == count_flops(meta) == watched_flops(cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_flops_on_cuda_match_meta():
    model = vit_b().cuda()
    with torch.device("meta"):
        meta = vit_b()
    assert count_flops(model) == count_flops(meta) == watched_flops(model)


def test_xl_flops_match_dit_xl2():
    "DiT-XL/2: 118.6 G multiply-adds (DiT's 'Gflops') ≈ 237 GFLOPs; ours differs only by adaLN and the 2 extra tokens."
    with torch.device("meta"):
        flops = count_flops(vit("vit_xl"))
    assert 225e9 < flops < 245e9


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return vit_tiny()


def test_output_shape_and_null_label(tiny):
    x = torch.randn(4, 1, 8, 8)
    y = torch.tensor([0, 3, 9, 10])  # 10 = num_classes: the null label of classifier-free guidance
    assert tiny(x, torch.tensor([0, 1, 500, 999]), y).shape == x.shape
    uncond = tiny(x, 100, torch.full((4,), 10))
    cond = tiny(x, 100, torch.full((4,), 3))
    assert not torch.allclose(uncond, cond)  # the label token changes the prediction


def test_every_parameter_gets_a_gradient(tiny):
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 11, (8,))
    tiny(x, torch.rand(8) * 999, y).square().sum().backward()
    missing = [n for n, p in tiny.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient for {missing}"


@pytest.mark.parametrize("time_embed", ["sinusoidal", "learned"])
def test_integer_and_fractional_t(time_embed):
    torch.manual_seed(0)
    model = vit_tiny(time_embed=time_embed).eval()
    x, y = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    at = {t: model(x, torch.tensor([t, t]), y) for t in (300, 300.0, 300.5, 301)}
    torch.testing.assert_close(at[300], at[300.0])
    assert not torch.allclose(at[300.5], at[300]) and not torch.allclose(at[300.5], at[301])
    if time_embed == "learned":  # the learned table interpolates rows, so the tokens are exactly midway
        torch.testing.assert_close(model.time_embed(torch.tensor([300.5])),
                                   (model.time_embed(torch.tensor([300.0])) + model.time_embed(torch.tensor([301.0]))) / 2)


def test_deterministic_under_a_seed():
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = vit_tiny(num_classes=None)
        outs.append(model(torch.ones(2, 1, 8, 8), torch.tensor([5, 900])))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_overrides_and_unconditional():
    model = vit_tiny(img_size=32, patch_size=4, in_chans=3, num_classes=None)
    assert model(torch.randn(2, 3, 32, 32), torch.tensor([1, 2])).shape == (2, 3, 32, 32)
    assert model.class_embed is None and model.num_extra_tokens == 1


def test_bf16_autocast_is_sound(tiny):
    x, t, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 250, 600, 999]), torch.tensor([1, 2, 3, 10])
    tiny.head.weight.data.mul_(1000)  # undo the near-zero head so the comparison is meaningful
    ref = tiny(x, t, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = tiny(x, t, y)
    assert low.isfinite().all()
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.parametrize("build,message", [
    (lambda: vit_b(img_size=31), "patch_size=2 does not divide img_size=31"),
    (lambda: DiffusionViT(img_size=10, patch_size=4), "patch_size=4 does not divide img_size=10"),
    (lambda: vit_b(num_heads=7), "num_heads=7 does not divide embed_dim=768"),
    (lambda: DiffusionViT(embed_dim=100, num_heads=12), "num_heads=12 does not divide embed_dim=100"),
    (lambda: vit_b(num_classes=0), "num_classes must be an integer ≥ 1, got 0"),
    (lambda: vit_b(num_classes=True), "num_classes must be an integer ≥ 1, got True"),
    (lambda: vit_b(out_chans=0), "out_chans must be an integer ≥ 1, got 0"),
    (lambda: vit_b(mlp_ratio=0), "mlp_ratio must be a positive number, got 0"),
    (lambda: vit_b(time_embed="fourier"), "time_embed must be one of 'sinusoidal', 'learned', got 'fourier'"),
    (lambda: vit_b(depth=0), "depth must be an integer ≥ 1, got 0"),
    (lambda: vit_b(patch_size=2.0), "patch_size must be an integer ≥ 1, got 2.0"),
    (lambda: vit("vit_g"), "ViT preset must be one of 'vit_tiny', 'vit_s', 'vit_b', 'vit_l', 'vit_xl', got 'vit_g'"),
    (lambda: DiffusionViT(ViTConfig(), patch_sz=2), "patch_sz"),
])
def test_bad_config(build, message):
    with pytest.raises((ValueError, TypeError)) as err:
        build()
    assert message in str(err.value)


@pytest.mark.parametrize("call,message", [
    (lambda m: m(torch.randn(2, 1, 8, 8), 3), "class-conditional (num_classes=10): pass y, with y=10 (the null label)"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 3, torch.tensor([0, 11])), "class label 11 is outside [0, 10]"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 3, torch.tensor([-1, 0])), "class label -1 is outside [0, 10]"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 3, torch.tensor([0, 12])), "class label 12 is outside [0, 10]"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 1000, torch.tensor([0, 1])), "timestep 1000 is outside [0, 999]"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 3, torch.tensor([0.0, 1.0])), "y must be integer labels"),
    (lambda m: m(torch.randn(2, 3, 8, 8), 3, torch.tensor([0, 1])), "x has 3 channels but the model takes in_chans=1"),
    (lambda m: m(torch.randn(2, 1, 16, 16), 3, torch.tensor([0, 1])), "x is 16×16 but the model takes img_size=8"),
    (lambda m: m(torch.randn(2, 1, 8, 8), -1.0, torch.tensor([0, 1])), "timestep -1.0 is outside [0, 999]"),
    (lambda m: m(torch.randn(1, 8, 8), 3, torch.tensor([0])), "x must be [batch, channels, height, width]"),
])
def test_bad_call(tiny, call, message):
    with pytest.raises(ValueError) as err:
        call(tiny)
    assert message in str(err.value)
