"""`minsnr.unet`: preset sizes, the calling convention, gradients, determinism and the error messages.

Parameter counts are measured on the meta device. The expected ranges are ±1% around what `nbs/06_unet.ipynb`
measured (see its table); ADM-64's 295.9M is ADM's published 296M (minus the 6→3 output channels, 0.01M), LDM-4's
401.4M is within 1.5% of LDM's published 400M.
"""
import pytest
import torch
from conftest import watched_flops

from minsnr.unet import (PRESETS, DiffusionUNet, UNetConfig, unet, unet_ablation, unet_adm64, unet_ldm395m,
                         unet_tiny)
from minsnr.backbone import count_flops, count_params

EXPECTED_PARAMS = {  # measured, ±1%
    "unet_tiny": 1.08e6,
    "unet_ablation": 118.92e6,
    "unet_ldm395m": 401.44e6,
    "unet_adm64": 295.90e6,
}
FACTORIES = {"unet_tiny": unet_tiny, "unet_ablation": unet_ablation, "unet_ldm395m": unet_ldm395m, "unet_adm64": unet_adm64}


def test_presets_are_all_listed():
    assert set(PRESETS) == set(EXPECTED_PARAMS) == set(FACTORIES)


@pytest.mark.parametrize("name", list(EXPECTED_PARAMS))
def test_param_count_on_meta(name):
    with torch.device("meta"):
        model = FACTORIES[name]()
    n = count_params(model)
    assert abs(n - EXPECTED_PARAMS[name]) < 0.01 * EXPECTED_PARAMS[name], f"{name}: {n}"


def test_ablation_config_is_appendix_c1():
    cfg = PRESETS["unet_ablation"]
    assert (cfg.model_channels, cfg.channel_mult, cfg.num_res_blocks) == (192, (1, 2, 2, 2), 3)
    assert (cfg.attention_resolutions, cfg.num_heads, cfg.use_scale_shift_norm) == ((16, 8), 4, True)
    with torch.device("meta"):
        model = unet_ablation()
    attn = [m for m in model.modules() if type(m).__name__ == "Attention"]
    # 3 + 3 down, 4 + 4 up (one more block per level), 1 in the middle, all 4 heads of 96 channels
    assert len(attn) == 15 and {(a.heads, a.inner_dim) for a in attn} == {(4, 384)}
    assert model.unet.class_embedding.num_embeddings == 1001  # 1000 classes + the null label
    assert all(a.group_norm is not None for a in attn)  # the middle block's too (diffusers drops it under scale_shift)


@pytest.mark.parametrize("name", [n if n in ("unet_tiny", "unet_ablation") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in EXPECTED_PARAMS])
def test_flops_do_not_depend_on_the_device(name):
    "A CPU model counts what its meta twin counts, and what a watched forward pass in the math attention form does."
    torch.manual_seed(0)
    cpu = FACTORIES[name]()
    with torch.device("meta"):
        meta = FACTORIES[name]()
    flops = count_flops(meta)
    assert count_flops(cpu) == flops == watched_flops(cpu)
    assert count_flops(meta, batch_size=2) == 2 * flops


def test_ablation_flops_near_vit_b():
    with torch.device("meta"):
        model = unet_ablation()
    flops = count_flops(model)
    assert 36e9 < flops < 39e9  # ViT-B/2: ≈46 GFLOPs


def test_overrides_and_output_shape():
    model = unet_tiny(img_size=32, in_chans=3, attention_resolutions=(16,), num_classes=None, zero_init=False)
    x = torch.randn(2, 3, 32, 32)
    out = model(x, torch.tensor([3, 900]))
    assert out.shape == x.shape and out.abs().sum() > 0
    assert model.config.num_classes is None and model.unet.class_embedding is None
    assert PRESETS["unet_tiny"].img_size == 8  # overrides do not leak into the preset


def _tiny(**kw):
    torch.manual_seed(0)
    return unet_tiny(**kw)


def test_zero_init_predicts_zero_and_all_params_learn():
    model = _tiny()
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 3, 9, 10])
    t = torch.tensor([0, 250, 500, 999])
    assert model(x, t, y).abs().max().item() == 0.0
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # ADM's zero init: step 1 only the output conv has a gradient, step 2 also the zeroed convs / projections,
    # step 3 everything; checked at step 3
    for step in range(3):
        opt.zero_grad()
        (model(x, t, y) - x).square().mean().backward()
        if step == 0:
            zero = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
            assert "unet.conv_in.weight" in zero and "unet.conv_out.weight" not in zero
        opt.step()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert missing == []


def test_every_param_gets_gradient_without_zero_init():
    model = _tiny(zero_init=False)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 3, 9, 10])
    model(x, torch.tensor([0, 250, 500, 999]), y).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    # the class table rows of unused labels get no gradient by construction; every parameter tensor does
    assert missing == []


def test_null_label_and_timesteps():
    model = _tiny(zero_init=False).eval()
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        cond = model(x, 100, torch.tensor([4, 4]))
        null = model(x, 100, torch.tensor([10, 10]))
        assert null.isfinite().all() and (cond - null).abs().max() > 0
        integer = model(x, torch.tensor([100, 101]), torch.tensor([4, 4]))
        frac = model(x, torch.tensor([100.5, 100.5]), torch.tensor([4, 4]))
        assert torch.allclose(model(x, torch.tensor([100.0, 101.0]), torch.tensor([4, 4])), integer, atol=1e-6)
        # 100.5 lies between its neighbours: closer to each of them than they are to a far timestep
        far = model(x, torch.tensor([900, 900]), torch.tensor([4, 4]))
        d_near = (frac[0] - integer[0]).abs().max()
        assert 0 < d_near < (far[0] - integer[0]).abs().max()


def test_determinism():
    a, b = _tiny(zero_init=False), _tiny(zero_init=False)
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), n
    x, y = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    with torch.no_grad():
        assert torch.equal(a(x, 5, y), b(x, 5, y))
    c = unet_tiny(zero_init=False)  # a different seed: different weights
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_ldm_class_token():
    model = DiffusionUNet(PRESETS["unet_tiny"], context_dim=16, zero_init=False)
    assert type(model.unet).__name__ == "UNet2DConditionModel" and model.class_context.num_embeddings == 11
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert (model(x, 5, torch.tensor([1, 1])) - model(x, 5, torch.tensor([10, 10]))).abs().max() > 0


def test_dropout_reaches_every_resblock():
    model = unet_tiny(dropout=0.3)
    rates = {m.dropout.p for m in model.modules() if type(m).__name__ == "ResnetBlock2D"}
    assert rates == {0.3}


@pytest.mark.parametrize("kwargs, message", [
    (dict(img_size=12), "img_size=12 is not divisible by 8 = 2^3, the downsampling of channel_mult=(1, 2, 2, 2)"),
    (dict(attention_resolutions=(2,)), "attention resolution 2 never occurs: with img_size=32 and 4 levels the resolutions are 32, 16, 8, 4"),
    (dict(norm_num_groups=40), "norm_num_groups=40 does not divide a level's width 192"),
    (dict(num_heads=7), "num_heads=7 does not divide the attention width 384"),
    (dict(num_head_channels=50), "num_head_channels=50 does not divide the attention width 384"),
    (dict(attention_resolutions=(32, 16)), "num_heads=4 at attention widths 192, 384 gives heads of different widths"),
    (dict(context_dim=512, num_classes=None), "context_dim (LDM's class token) needs a class-conditional model"),
    (dict(dropout=1.0), "dropout must be a number in [0, 1), got 1.0"),
    (dict(dropout=-0.1), "dropout must be a number in [0, 1), got -0.1"),
    (dict(img_size=36), "img_size=36 is not divisible by 8 = 2^3, the downsampling of channel_mult=(1, 2, 2, 2)"),
    (dict(attention_resolutions=(12,)), "attention resolution 12 never occurs: with img_size=32 and 4 levels the resolutions are 32, 16, 8, 4"),
    (dict(model_channels=200), "norm_num_groups=32 does not divide a level's width 200 (model_channels=200 × channel_mult 1)"),
    (dict(num_heads=5), "num_heads=5 does not divide the attention width 384"),
    (dict(num_head_channels=100), "num_head_channels=100 does not divide the attention width 384"),
    (dict(num_res_blocks=0), "num_res_blocks must be an integer ≥ 1, got 0"),
    (dict(model_channels=True), "model_channels must be an integer ≥ 1, got True"),
    (dict(out_chans=0), "out_chans must be an integer ≥ 1, got 0"),
    (dict(num_classes=0), "num_classes must be an integer ≥ 1, got 0"),
    (dict(channel_mult=()), "channel_mult must list at least one level"),
    (dict(channel_mult=(1, 0)), "every channel_mult entry must be an integer ≥ 1, got 0"),
    (dict(context_dim=512, resblock_updown=True), "resblock_updown is not available with context_dim"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError) as err:
        UNetConfig(**kwargs)
    assert message in str(err.value)


def test_unknown_preset():
    with pytest.raises(ValueError) as err:
        unet("unet_xl")
    assert "UNet preset must be one of 'unet_tiny', 'unet_ablation', 'unet_ldm395m', 'unet_adm64', got 'unet_xl'" in str(err.value)


def test_a_preset_override_is_checked_like_a_config():
    "unet_tiny(img_size=32) keeps the tiny preset's attention at 4×4, which a 32×32 two-level network never reaches."
    with pytest.raises(ValueError, match="attention resolution 4 never occurs: with img_size=32 and 2 levels the resolutions are 32, 16"):
        unet_tiny(img_size=32)


@pytest.mark.parametrize("call, message", [
    (lambda m: m(torch.randn(2, 3, 8, 8), 5, torch.tensor([1, 2])), "x has 3 channels but the model takes in_chans=1"),
    (lambda m: m(torch.randn(2, 1, 16, 16), 5, torch.tensor([1, 2])), "x is 16×16 but the model takes img_size=8"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 5, torch.tensor([1, 11])), "class label 11 is outside [0, 10] (10 is the null label)"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 5), "this model is class-conditional (num_classes=10): pass y, with y=10"),
    (lambda m: m(torch.randn(2, 1, 8, 8), -0.5, torch.tensor([1, 2])), "timestep -0.5 is outside [0, 999]"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 1000, torch.tensor([1, 2])), "timestep 1000 is outside [0, 999]"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 5, torch.tensor([0, 12])), "class label 12 is outside [0, 10]"),
    (lambda m: m(torch.randn(2, 1, 8, 8), 5, torch.tensor([0.0, 1.0])), "y must be integer labels of shape [2]"),
])
def test_bad_inputs(call, message):
    model = unet_tiny()
    with pytest.raises(ValueError) as err:
        call(model)
    assert message in str(err.value)


def test_unconditional_model_refuses_a_label():
    model = unet_tiny(num_classes=None)
    assert model.unet.class_embedding is None
    with pytest.raises(ValueError, match=r"this model is unconditional \(num_classes=None\) but a class label y was given"):
        model(torch.randn(2, 1, 8, 8), 5, torch.tensor([1, 2]))


def test_bf16_autocast_close_to_fp32():
    model = _tiny(zero_init=False).eval()
    x, y = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    with torch.no_grad():
        ref = model(x, 500, y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(x, 500, y)
    assert half.isfinite().all()
    assert (half.float() - ref).abs().max() < 0.05 * ref.abs().max()
