"""The components VisionCore's own configs do not use, each against a formula written here
(their agreement with VisionCore's code is recorded in trainer/models/README.md)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trainer.models.components.adapter import AffineAdapter
from trainer.models.components.frontend import DAModel, TemporalBasis
from trainer.models.components.readout import FlattenedLinearReadout
from trainer.models.components.recurrent import RecurrentWrapper
from trainer.models.layers.block import ConvBlock
from trainer.models.layers.conv import DepthwiseConv
from trainer.models.layers.mlp import MLP
from trainer.models.layers.norm_act import make_activation, make_norm
from trainer.models.layers.pool import LocalChannelSpatialAttn, SESoftPool, softpool2d


def _close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    return torch.allclose(a, b, atol=tol, rtol=tol)


def test_layer_norm_group_norm_bsoftplus_and_square():
    x = torch.randn(2, 6, 3, 4, 4)
    mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
    assert _close(make_norm("layer", 6, {"eps": 1e-4})(x), (x - mean) / torch.sqrt(var + 1e-4))
    groups = make_norm("group", 6, {"num_groups": 4})  # 6 % 4: one group, as VisionCore
    assert groups.num_groups == 1
    flat = x.reshape(2, -1)
    expected = (flat - flat.mean(1, keepdim=True)) / torch.sqrt(
        flat.var(1, unbiased=False, keepdim=True) + 1e-5
    )
    assert _close(groups(x), expected.view_as(x), 1e-4)
    assert _close(make_activation("bsoftplus", {"beta_init": 2.0})(x), F.softplus(2 * x) / 2)
    clamped = make_activation("bsoftplus", {"beta_init": 50.0, "beta_max": 10.0})
    assert _close(clamped(x), F.softplus(10 * x) / 10)
    assert torch.equal(make_activation("square")(x), x * x)


def test_norm_and_pool_after_a_splitrelu_see_twice_the_channels():
    """VisionCore builds them for the conv's channels and crashes; here they fit."""
    block = ConvBlock(
        2, 4, {"kernel_size": [1, 3, 3]}, norm_type="rms", act_type="splitrelu",
        pool_params={"type": "aablur"}, order=["pad", "conv", "act", "norm", "pool"],
    )  # fmt: skip
    assert block.components["norm"].gamma.shape == (8,)
    assert block(torch.randn(2, 2, 1, 8, 8)).shape == (2, 8, 1, 3, 3)
    assert block.output_channels == 8


def test_aablur_is_binomial_blur_softpool_then_a_squeeze_excite_gate():
    pool = SESoftPool(channels=4, stride=2, r=2, use_soft=True, blur=True)
    x = torch.randn(2, 4, 3, 8, 8)
    frames = x.transpose(1, 2).reshape(-1, 1, 8, 8)
    k = torch.tensor([1.0, 2.0, 1.0])
    blurred = F.conv2d(frames, (torch.outer(k, k) / 16)[None, None], padding=1)
    pooled = softpool2d(blurred, 2, 2).view(2, 3, 4, 4, 4).transpose(1, 2)
    squeeze = pooled.mean(dim=(3, 4), keepdim=True)
    conv1, conv2 = pool.se[1], pool.se[3]
    gate = torch.sigmoid(conv2(F.silu(conv1(squeeze))))
    assert _close(pool(x), pooled * gate)


def test_locatt_gates_by_channel_window_and_per_frame_spatial_conv():
    attn = LocalChannelSpatialAttn(6, chan_window=3, spatial_kernel=3)
    x = torch.randn(2, 6, 2, 5, 5)
    g_ch = attn.chan_conv1d(x.permute(0, 2, 3, 4, 1).reshape(-1, 6, 1))
    g_ch = torch.sigmoid(g_ch.reshape(2, 2, 5, 5, 6).permute(0, 4, 1, 2, 3))
    # VisionCore folds (B, C, T, H, W) memory straight into (B*T, C, H, W) frames.
    g_sp = torch.sigmoid(attn.spatial_conv2d(x.reshape(-1, 6, 5, 5)))
    g_sp = g_sp.reshape(2, 2, 6, 5, 5).permute(0, 2, 1, 3, 4)
    assert _close(attn(x), x * g_ch * g_sp)
    assert attn.chan_conv1d.groups == 2  # windows of 3 channels


def test_depthwise_conv_is_per_channel_then_pointwise_with_window_and_weight_norm():
    conv = DepthwiseConv(
        3, 5, [3, 5, 5], aa_signal=True, use_weight_norm=True, keep_unit_norm=False,
        weight_norm_dim=0,
    )  # fmt: skip
    x = torch.randn(2, 3, 4, 7, 7)
    depthwise, pointwise = conv.depthwise.weight, conv.pointwise.weight
    assert depthwise.shape == (3, 1, 3, 5, 5) and pointwise.shape == (5, 3, 1, 1, 1)
    mask = conv.depthwise.parametrizations.weight[1].mask
    assert float(mask[0, 0, 1, 2, 2]) == 1.0 and float(mask[0, 0, 1, 0, 0]) == 0.0
    v = conv.pointwise.parametrizations.weight[0].v
    g = conv.pointwise.parametrizations.weight[0].g
    assert _close(
        pointwise, g.view(-1, 1, 1, 1, 1) * v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1, 1)
    )
    expected = F.conv3d(F.conv3d(x, depthwise, groups=3), pointwise, conv.pointwise.bias)
    assert _close(conv(x), expected)


def test_temporal_basis_projects_each_pixels_past_on_raised_cosines():
    basis = TemporalBasis(
        num_delta_funcs=1, num_cosine_funcs=2, history_bins=6, log_spacing=False,
        peak_range_ms=[10.0, 30.0], bin_size_ms=5.0, normalize=False, orthogonalize=False,
        causal=True, batch_norm=False, chomp=None,
    )  # fmt: skip

    # Lag k (k = 0 the current frame) carries tap k - 1 of each function: the current
    # frame has weight 0; delta 0 is lag 1; a cosine peaking at c ms weighs lag k by
    # (cos(pi (5 (k - 1) - c) / 40) + 1) / 2 within 40 ms of c (twice the peaks' spacing).
    def weight(j: int, k: int) -> float:
        if k == 0:
            return 0.0
        if j == 0:
            return 1.0 if k == 1 else 0.0
        arg = math.pi * (5.0 * (k - 1) - (10.0, 30.0)[j - 1]) / 40.0
        return (math.cos(arg) + 1) / 2 if abs(arg) <= math.pi else 0.0

    x = torch.randn(1, 1, 9, 2, 2)
    y = basis(x)
    assert y.shape == (1, 3, 9, 2, 2)
    for j in range(3):
        for t in (0, 4, 8):
            expected = sum(
                weight(j, k) * float(x[0, 0, t - k, 1, 0]) for k in range(t + 1) if k < 7
            )
            assert abs(float(y[0, j, t, 1, 0]) - expected) < 1e-5, (j, t)


def test_da_frontend_divides_a_fast_filter_by_a_mixed_one():
    da = DAModel(sampling_rate=100, alpha=0.5, beta=0.2, gamma=0.3, tau_y_ms=20.0,
                 tau_z_ms=50.0, n_y=2.0, n_z=1.0, filter_length=8)  # fmt: skip
    s = torch.rand(1, 1, 6, 1, 1)

    def kernel(tau_ms: float, n: float) -> list[float]:
        tau = tau_ms / 10.0  # steps of 10 ms
        return [k**n * math.exp(-k / tau) / (tau ** (n + 1) * math.gamma(n + 1)) for k in range(8)]

    ky, kslow = kernel(20.0, 2.0), kernel(50.0, 1.0)
    kz = [0.3 * a + 0.7 * b for a, b in zip(ky, kslow, strict=True)]
    series = s.flatten().tolist()
    out = da(s).flatten()
    for t in range(6):
        y = sum(ky[k] * series[t - k] for k in range(t + 1))
        z = sum(kz[k] * series[t - k] for k in range(t + 1))
        assert abs(float(out[t]) - 0.5 * y / (1 + 0.2 * z)) < 1e-6


def test_gru_and_lstm_stages_run_on_flattened_frames():
    x = torch.randn(2, 3, 4, 2, 2)
    for kind in ("gru", "lstm"):
        stage = RecurrentWrapper(kind, hidden_size=5, input_channels=3, num_layers=1)
        y = stage(x)
        assert y.shape == (2, 5, 4, 1, 1)
        expected, _ = stage.rnn(x.permute(0, 2, 1, 3, 4).reshape(2, 4, 12))
        assert _close(y[..., 0, 0], expected.transpose(1, 2))


def test_linear_readout_averages_the_last_frame_then_applies_a_linear_layer():
    readout = FlattenedLinearReadout(3, 4, bias=True)
    x = torch.randn(2, 3, 5, 6, 6)
    expected = x[:, :, -1].mean(dim=(2, 3)) @ readout.fc.weight.T + readout.fc.bias
    assert _close(readout(x), expected)
    assert readout.bias is readout.fc.bias  # VisionCore's two names, one tensor


def test_affine_adapter_identity_resamples_exactly_and_its_blur_learns():
    sharp = AffineAdapter(init_sigma=1e-4, grid_size=7, transform="affine")
    x = torch.randn(2, 1, 3, 7, 7)
    assert _close(sharp(x), x)  # identity transform, no blur: the same pixels
    blurry = AffineAdapter(init_sigma=1.5, grid_size=7, transform="affine")
    blurry(torch.randn(2, 1, 3, 9, 9)).square().sum().backward()
    assert blurry.log_sigma.grad is not None and float(blurry.log_sigma.grad) != 0.0
    assert blurry.affine.grad is not None


def test_history_mlp_residual_adds_the_input_and_spectral_norm_bounds_the_gain():
    residual = MLP(6, [8], 6, residual=True)
    x = torch.randn(4, 6)
    assert _close(residual(x), residual.mlp(x) + x)
    spectral = MLP(6, [8], 3, spectral_norm=True)
    for _ in range(30):  # power iterations run in training mode
        spectral(x)
    spectral.eval()
    weight = spectral.mlp[0].linear.weight
    assert abs(float(torch.linalg.matrix_norm(weight, ord=2)) - 1.0) < 1e-3
