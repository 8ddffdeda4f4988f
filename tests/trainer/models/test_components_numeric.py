"""Each layer against a formula written here (not against VisionCore's code)."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.models.components.convnet import ConvNet
from trainer.models.components.readout import DynamicGaussianReadout
from trainer.models.components.recurrent import ConvGRU
from trainer.models.layers.block import ConvBlock
from trainer.models.layers.conv import StandardConv
from trainer.models.layers.norm_act import GlobalResponseNorm, RMSNorm, SplitRelu
from trainer.models.layers.pool import SESoftPool, softpool2d

torch.manual_seed(0)


def test_splitrelu_doubles_channels_into_positive_and_negative_parts():
    x = torch.randn(2, 3, 4, 5, 5)
    y = SplitRelu()(x)
    assert y.shape == (2, 6, 4, 5, 5)
    assert torch.equal(y[:, :3], x.clamp_min(0)) and torch.equal(y[:, 3:], (-x).clamp_min(0))
    block = ConvBlock(3, 4, {"kernel_size": [1, 3, 3]}, norm_type="none", act_type="splitrelu")
    assert block.output_channels == 8 and block(x).shape[1] == 8


def test_grn_matches_its_formula():
    x = torch.randn(2, 4, 3, 5, 5)
    grn = GlobalResponseNorm(4, eps=1e-4)
    with torch.no_grad():
        grn.gamma.uniform_(-1, 1)
        grn.beta.uniform_(-1, 1)
    g = x.pow(2).sum(dim=(2, 3, 4), keepdim=True).sqrt()  # L2 over T, H, W per channel
    n = g / (g.mean(dim=1, keepdim=True) + 1e-4)
    expected = grn.gamma * (x * n) + grn.beta + x
    assert torch.allclose(grn(x), expected, atol=1e-6)


def test_rms_norm_matches_its_formula():
    x = torch.randn(2, 4, 3, 5, 5)
    norm = RMSNorm(4, (1,), eps=1e-5)
    expected = x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-5)
    assert torch.allclose(norm(x), expected, atol=1e-6)


def test_softpool_is_the_exp_weighted_window_mean():
    x = torch.randn(1, 1, 4, 4) * 20
    y = softpool2d(x, 2, 2)
    window = x[0, 0, :2, :2].flatten()
    w = torch.exp(window / 10.0)
    assert y[0, 0, 0, 0] == pytest.approx(float((window * w).sum() / (w.sum() + 4e-6)), rel=1e-5)
    pool = SESoftPool(channels=8, stride=2, r=8, use_soft=True, blur=True)
    out = pool(torch.randn(2, 8, 3, 10, 10))
    assert out.shape == (2, 8, 3, 5, 5)
    blur = pool.blur[0, 0]
    assert torch.allclose(blur, torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16.0)


def test_rotated_gaussian_mask_sums_to_one_and_peaks_at_the_mean():
    readout = DynamicGaussianReadout(2, 3, initial_std=1.0)
    with torch.no_grad():
        readout.mean.copy_(torch.tensor([[0.0, 0.0], [2.0, -3.0], [-1.0, 1.0]]))
        readout.std.copy_(torch.tensor([[1.0, 1.0], [0.7, 2.0], [3.0, 0.5]]))
        readout.theta.copy_(torch.tensor([0.0, 0.3, math.pi / 4]))
    mask = readout.gaussian_mask(11, 11)
    assert torch.allclose(mask.sum(dim=(1, 2)), torch.ones(3), atol=1e-6)
    for unit, (y, x) in enumerate(readout.mean.tolist()):
        peak = divmod(int(mask[unit].argmax()), 11)
        assert peak == (int(y) + 5, int(x) + 5)  # pixel coordinates from the centre
    # The formula: d = (y, x) - mean, u = d @ [[cos, -sin], [sin, cos]], exp(-|u / std|^2 / 2).
    my, mx = readout.mean[2].tolist()
    sy, sx = readout.std[2].tolist()
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    raw = torch.zeros(11, 11)
    for i in range(11):
        for j in range(11):
            dy, dx = i - 5 - my, j - 5 - mx
            u0, u1 = dy * c + dx * s, -dy * s + dx * c
            raw[i, j] = math.exp(-0.5 * ((u0 / sy) ** 2 + (u1 / sx) ** 2))
    assert torch.allclose(mask[2], raw / raw.sum(), atol=1e-6)
    assert mask[2][4 + 1, 6 + 1] > 3 * mask[2][4 + 1, 6 - 1]  # the long axis is diagonal


def test_causal_block_never_looks_ahead():
    block = ConvBlock(2, 3, {"kernel_size": [3, 3, 3], "padding": [0, 1, 1], "dilation": [2, 1, 1]},
                      norm_type="none", act_type="relu", causal=True)  # fmt: skip
    x = torch.randn(1, 2, 10, 6, 6)
    y = block(x)
    assert y.shape == (1, 3, 10, 6, 6)  # time kept: (kT - 1) * dilation past frames padded
    changed = x.clone()
    changed[:, :, 7] += 5.0  # a "future" frame, for outputs 0..6
    y2 = block(changed)
    assert torch.equal(y[:, :, :7], y2[:, :, :7]) and not torch.equal(y[:, :, 7:], y2[:, :, 7:])


@pytest.mark.parametrize("conv_stride", [1, 2])
@pytest.mark.parametrize(
    "pool",
    [
        None,
        {"type": "max", "kernel_size": 2, "stride": 2},
        {"type": "aablur", "stride": 2},
        {"type": "avg", "kernel_size": 2},
    ],
)
def test_resnet_shortcut_shapes_for_every_stride_and_pool(conv_stride, pool):
    conv = {"kernel_size": [3, 3, 3], "stride": [1, conv_stride, conv_stride], "padding": [0, 1, 1]}
    block = {"conv_params": conv, "norm_type": "none", "pool_params": pool}
    net = ConvNet("resnet", 4, {"channels": [8], "block_configs": [block]})
    res = net.layers[0]
    stride = conv_stride * ((pool or {}).get("stride") or 1)  # as VisionCore counts it
    assert isinstance(res.shortcut, torch.nn.Conv3d) and res.shortcut.bias is None
    assert res.shortcut.kernel_size == (1, 1, 1) and res.shortcut.stride[-1] == stride
    x = torch.randn(2, 4, 5, 16, 16)
    y = net(x)
    main, skip = res.main_block(x), res.shortcut(x)
    # Both cropped to the common size (VisionCore: the shortcut to the main branch, and a
    # crash when the shortcut is the smaller one): latest frames, spatial centre.
    t, h, w = (min(a, b) for a, b in zip(main.shape[2:], skip.shape[2:], strict=True))
    assert y.shape == (2, 8, t, h, w)

    def crop(z):
        top, left = (z.shape[-2] - h) // 2, (z.shape[-1] - w) // 2
        return z[:, :, z.shape[2] - t :, top : top + h, left : left + w]

    assert torch.allclose(y, crop(main) + crop(skip), atol=1e-6)
    if pool is None or pool["type"] != "aablur":
        assert y.shape == main.shape  # where VisionCore runs, the main branch is kept whole


def test_identity_shortcut_when_nothing_changes():
    # Without "pad" in ``order`` a 2-D block uses its conv padding (with it, as upstream,
    # the block's own zero "pad" step replaces it).
    conv = {"kernel_size": [1, 3, 3], "padding": [0, 1, 1]}
    block = {"conv_params": conv, "norm_type": "none", "order": ["conv", "norm", "act"]}
    net = ConvNet("resnet", 4, {"channels": [4], "block_configs": [block]})
    x = torch.randn(1, 4, 2, 6, 6)
    assert torch.allclose(net(x), net.layers[0].main_block(x) + x)


def test_densenet_concatenates_cropped_input_and_growth():
    block = {"conv_params": {"kernel_size": [1, 3, 3]}, "norm_type": "none"}  # valid: -2 px
    net = ConvNet("densenet", 2, {"channels": [3, 5], "block_configs": [block, block]})
    x = torch.randn(1, 2, 2, 9, 9)
    y = net(x)
    assert y.shape == (1, 2 + 3 + 5, 2, 5, 5) and net.output_channels == 10
    assert torch.equal(y[:, :2], x[..., 2:7, 2:7])  # the input, centre-cropped twice


def test_window_and_weight_norm_make_the_effective_kernel():
    conv = StandardConv(2, 3, [1, 5, 5], bias=False, aa_signal=True, aa_window="hann",
                        aa_window_kwargs={"power": 0.5}, use_weight_norm=True)  # fmt: skip
    chain = conv.conv.parametrizations.weight
    v, g = chain[0].v, chain[0].g
    hann = torch.signal.windows.hann(5).pow(0.5)
    mask = (hann / hann.max()).view(1, 5, 1) * (hann / hann.max()).view(1, 1, 5)
    norm = v.flatten(1).norm(dim=1).view(-1, 1, 1, 1, 1)
    expected = mask * g.view(-1, 1, 1, 1, 1) * v / norm
    assert torch.allclose(conv.weight, expected, atol=1e-6)
    assert not chain.original.requires_grad  # dead under weight norm: frozen (README)


def test_convgru_equals_the_per_step_gru_equations():
    gru = ConvGRU(3, 4, 3, n_layers=1)
    cell = gru.cells[0]
    x = torch.randn(2, 3, 5, 6, 6)
    h = torch.zeros(2, 4, 6, 6)
    for t in range(5):
        xh = torch.cat([x[:, :, t], h], 1)
        z, r = torch.sigmoid(cell.update_gate(xh)), torch.sigmoid(cell.reset_gate(xh))
        n = torch.tanh(cell.out_gate(torch.cat([x[:, :, t], r * h], 1)))
        h = (1 - z) * h + z * n
    assert torch.allclose(gru(x)[:, :, -1], h, atol=1e-5)


def test_film_scale_starts_at_one_and_shift_at_zero():
    from trainer.models.components.modulator import FiLMModulator

    film = FiLMModulator(3, 4, {"dims": [8, 8]})
    feats, beh = torch.randn(2, 4, 3, 5, 5), torch.randn(2, 3)
    emb = film.encoder(beh)
    scale = emb.sum(1).view(2, 1, 1, 1, 1)  # weights all one, bias zero
    assert torch.allclose(film(feats, beh), scale * feats, atol=1e-5)
