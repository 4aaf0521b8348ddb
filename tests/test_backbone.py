"""`minsnr.backbone`: every input `check_backbone_inputs` refuses (and the message it gives), parameter and FLOP counts
of a backbone small enough to count by hand, and the throughput measurement's report."""
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from minsnr.backbone import check_backbone_inputs, count_flops, count_params, training_throughput

X = torch.zeros(2, 4, 8, 8)
LABELS = torch.tensor([0, 10])
# (x, t, y, num_classes): the model takes in_chans=4, img_size=8, T=1000
BAD_INPUTS = [
    (torch.zeros(4, 8, 8), 5, None, None, "x must be [batch, channels, height, width], got shape (4, 8, 8)"),
    (torch.zeros(2, 3, 8, 8), 5, None, None, "x has 3 channels but the model takes in_chans=4"),
    (torch.zeros(2, 4, 16, 16), 5, None, None, "x is 16×16 but the model takes img_size=8 (8×8)"),
    (torch.zeros(2, 4, 8, 4), 5, None, None, "x is 8×4 but the model takes img_size=8"),
    (X, torch.zeros(3), None, None, "t must be a scalar or have shape [2] (one per image), got (3,)"),
    (X, torch.zeros(2, 1), None, None, "t must be a scalar or have shape [2] (one per image), got (2, 1)"),
    (X, 5, LABELS, None, "this model is unconditional (num_classes=None) but a class label y was given"),
    (X, 5, None, 10, "this model is class-conditional (num_classes=10): pass y, with y=10 (the null label)"),
    (X, 5, torch.tensor([0.0, 1.0]), 10, "y must be integer labels of shape [2], got torch.float32 of shape (2,)"),
    (X, 5, torch.tensor([0, 1, 2]), 10, "y must be integer labels of shape [2], got torch.int64 of shape (3,)"),
    (X, 5, torch.tensor([0, 11]), 10, "class label 11 is outside [0, 10] (10 is the null label)"),
    (X, 5, torch.tensor([-1, 0]), 10, "class label -1 is outside [0, 10]"),
    (X, torch.tensor([1.0, 1000.0]), None, None, "timestep 1000.0 is outside [0, 999]"),
    (X, 1000, None, None, "timestep 1000 is outside [0, 999]"),
    (X, -0.5, None, None, "timestep -0.5 is outside [0, 999]"),
    (X, torch.tensor([1.0, math.nan]), None, None, "timestep nan is outside [0, 999]"),
    (X, math.inf, None, None, "timestep inf is outside [0, 999]"),
]


@pytest.mark.parametrize("x, t, y, num_classes, message", BAD_INPUTS, ids=[m[:40] for *_, m in BAD_INPUTS])
def test_bad_inputs_are_refused_with_a_message(x, t, y, num_classes, message):
    with pytest.raises(ValueError) as err:
        check_backbone_inputs(x, t, y, in_chans=4, img_size=8, num_classes=num_classes, num_timesteps=1000)
    assert message in str(err.value)
    assert "\n" not in str(err.value)  # one line


@pytest.mark.parametrize("t", [5, 5.5, torch.tensor(5), torch.tensor([5, 7]), torch.tensor([0.0, 999.0])])
def test_good_timesteps_come_back_as_float_vectors(t):
    out = check_backbone_inputs(X, t, LABELS, 4, 8, 10, 1000)
    assert out.dtype == torch.float32 and out.shape == (2,) and out.device == X.device
    torch.testing.assert_close(out, torch.as_tensor(t, dtype=torch.float32).expand(2))


def test_value_checks_can_be_switched_off():
    "check_values=False skips the label and timestep ranges (no device→host sync), but never the shape checks."
    out = check_backbone_inputs(X, 5000, torch.tensor([0, 99]), 4, 8, 10, 1000, check_values=False)
    assert out.tolist() == [5000.0, 5000.0]
    with pytest.raises(ValueError, match="x has 3 channels"):
        check_backbone_inputs(torch.zeros(2, 3, 8, 8), 5, LABELS, 4, 8, 10, 1000, check_values=False)


class PointwiseBackbone(nn.Module):
    "The smallest backbone: a 1×1 convolution from in_chans to in_chans, with the `model(x, t, y)` convention."

    def __init__(self, in_chans=3, img_size=4, num_classes=None):
        super().__init__()
        self.config = SimpleNamespace(in_chans=in_chans, img_size=img_size, num_classes=num_classes,
                                      num_timesteps=1000, check_values=True)
        self.conv = nn.Conv2d(in_chans, in_chans, 1)

    def forward(self, x, t, y=None):
        c = self.config
        check_backbone_inputs(x, t, y, c.in_chans, c.img_size, c.num_classes, c.num_timesteps, c.check_values)
        return self.conv(x)


def test_count_params_by_hand():
    assert count_params(nn.Linear(3, 4)) == 3 * 4 + 4
    assert count_params(PointwiseBackbone(in_chans=3)) == 3 * 3 + 3


@pytest.mark.parametrize("num_classes", [None, 10])
def test_count_flops_by_hand(num_classes):
    "A 1×1 convolution C→C on h×w pixels: 2·C·C·h·w FLOPs (a multiply-add is 2), per image."
    model = PointwiseBackbone(in_chans=3, img_size=4, num_classes=num_classes)
    assert count_flops(model) == 2 * 3 * 3 * 4 * 4
    assert count_flops(model, batch_size=5) == 5 * count_flops(model)
    assert model.config.check_values is True  # switched off for the meta pass only
    assert model.conv.weight.device.type == "cpu"  # the model itself is not moved


def test_count_flops_restores_check_values_after_an_error():
    model = PointwiseBackbone()
    model.forward = lambda x, t, y=None: 1 / 0  # fails inside the counted pass
    with pytest.raises(ZeroDivisionError):
        count_flops(model)
    assert model.config.check_values is True


@pytest.mark.parametrize("peak_flops", [None, 1e12])
def test_training_throughput_reports(peak_flops):
    torch.manual_seed(0)
    model = PointwiseBackbone()
    before = model.conv.weight.detach().clone()
    speed = training_throughput(model, batch_size=4, steps=2, warmup=1, dtype=None, peak_flops=peak_flops)
    assert set(speed) == {"images_per_s", "s_per_step", "train_tflops_per_s"} | ({"mfu"} if peak_flops else set())
    assert speed["images_per_s"] == pytest.approx(4 / speed["s_per_step"])
    assert speed["train_tflops_per_s"] == pytest.approx(3 * count_flops(model, 4) / speed["s_per_step"] / 1e12)
    if peak_flops: assert speed["mfu"] == pytest.approx(speed["train_tflops_per_s"] * 1e12 / peak_flops)
    assert not torch.equal(model.conv.weight, before)  # it really trained (3 AdamW steps)
