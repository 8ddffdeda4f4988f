"""Normalisations and activations by VisionCore's names (``norm_type``, ``act_type``).

Every norm works on 5-D ``(B, C, T, H, W)`` tensors whatever the kernel's shape: VisionCore
picks ``BatchNorm2d``/``InstanceNorm2d`` for 2-D kernels and then crashes on the 5-D
input; here the 3-D (or, for MLPs, 1-D) version is used (README).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class SplitRelu(nn.Module):
    """``[relu(x) * |ongain|, relu(-x)]`` along ``split_dim``: twice the channels."""

    def __init__(self, split_dim: int = 1, trainable_gain: bool = False):
        super().__init__()
        self.split_dim = split_dim
        self.ongain = nn.Parameter(torch.ones(1), requires_grad=trainable_gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(x) * self.ongain.abs(), F.relu(-x)], dim=self.split_dim)


class BSoftplus(nn.Module):
    """``softplus(beta * x) / beta`` with learned ``beta = exp(log_beta)``, clamped."""

    def __init__(self, beta_init: float = 1.0, beta_min: float = 0.1, beta_max: float = 10.0):
        super().__init__()
        self.log_beta = nn.Parameter(torch.log(torch.tensor(float(beta_init))))
        self.beta_min, self.beta_max = beta_min, beta_max

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.log_beta.exp().clamp(self.beta_min, self.beta_max)
        return F.softplus(beta * x) / beta


class Square(nn.Module):
    """``x ** 2`` (an energy-model nonlinearity)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * x


class LogSoftplus(nn.Module):
    """``log(softplus(x))``, finite for every ``x``: inputs below ``FLOOR`` count as ``FLOOR``.

    Ours (not VisionCore's): the core's last activation for log-rate models; the readout's
    ``exp(w . f + b)`` of one such feature is ``e^b * softplus(h)^w``, the saturating LN
    shape of V1 units. Exact down to the floor (``softplus(-80)`` is a normal float32); a
    clamp rather than a ``where`` keeps it cheap on the whole feature map.
    """

    FLOOR = -80.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(F.softplus(x.clamp(min=self.FLOOR)))


_SIMPLE = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "mish": nn.Mish,
    "softplus": nn.Softplus,
    "square": Square,
    "log_softplus": LogSoftplus,
}


def make_activation(name: str | None, params: dict[str, Any] | None = None) -> nn.Module:
    """An activation by VisionCore's name, or a ``torch.nn`` class spelled as torch does."""
    params = params or {}
    if name is None or name.lower() in ("none", "identity"):
        return nn.Identity()
    low = name.lower()
    if low in _SIMPLE:
        return _SIMPLE[low]()
    if low == "leakyrelu":
        return nn.LeakyReLU(params.get("negative_slope", 0.01))
    if low == "gelu":
        return nn.GELU(approximate=params.get("approximate", "none"))
    if low == "bsoftplus":
        keys = ("beta_init", "beta_min", "beta_max")
        return BSoftplus(**{k: params[k] for k in keys if k in params})
    if low == "splitrelu":
        return SplitRelu(params.get("split_dim", 1), params.get("trainable_gain", False))
    cls = getattr(nn, name, None)
    if cls is None:
        raise ValueError(f"unknown activation {name!r}")
    return cls()


def doubles_channels(act: nn.Module) -> bool:
    """SplitRelu doubles the channel count."""
    return isinstance(act, SplitRelu)


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2 over norm_dims) + eps)`` (fp32), then ``gamma * . + beta``."""

    def __init__(self, num_features: int, norm_dims: tuple[int, ...] = (1,), eps: float = 1e-4,
                 affine: bool = True):  # fmt: skip
        super().__init__()
        self.norm_dims, self.eps, self.affine = norm_dims, eps, affine
        self.num_features = num_features
        if affine:
            self.gamma = nn.Parameter(torch.ones(num_features))
            self.beta = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("gamma", None)
            self.register_parameter("beta", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(self.norm_dims, keepdim=True) + self.eps)
        if self.affine:
            shape = [1, -1] + [1] * (x.ndim - 2)
            y = y * self.gamma.view(shape).float() + self.beta.view(shape).float()
        return y.to(x.dtype)


class LayerNorm(nn.Module):
    """Mean/variance normalisation over ``norm_dims`` (fp32), no parameters."""

    def __init__(self, norm_dims: tuple[int, ...] = (1,), eps: float = 1e-4):
        super().__init__()
        self.norm_dims, self.eps = norm_dims, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        mean = x32.mean(self.norm_dims, keepdim=True)
        var = x32.pow(2).mean(self.norm_dims, keepdim=True) - mean.pow(2)
        return ((x32 - mean) * torch.rsqrt(var + self.eps)).to(x.dtype)


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-v2 GRN: ``gamma * x * n + beta + x``, ``n = |x|_{THW} / mean_C(|x|_{THW})``."""

    no_weight_decay = ("gamma", "beta")  # a norm's gain and shift, 5-D only to broadcast

    def __init__(self, channels: int, eps: float = 1e-4, gamma_init: float = 0.1):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1, 1), gamma_init))
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, dim=(2, 3, 4), keepdim=True)
        nx = gx / (gx.mean(1, keepdim=True) + self.eps)
        return self.gamma * (x * nx) + self.beta + x


def make_norm(
    name: str | None, channels: int, params: dict[str, Any] | None = None, spatial: bool = True
) -> nn.Module:
    """A norm by VisionCore's name; ``spatial`` False builds the 1-D versions (MLPs)."""
    params = params or {}
    if name is None or name.lower() == "none":
        return nn.Identity()
    low = name.lower()
    eps = params.get("eps", 1e-5)
    affine = params.get("affine")
    target = params.get("target_dim", 1)
    target = (target,) if isinstance(target, int) else tuple(target)
    if low == "batch":
        cls = nn.BatchNorm3d if spatial else nn.BatchNorm1d
        return cls(channels, eps=eps, affine=True if affine is None else affine)
    if low == "instance":
        cls = nn.InstanceNorm3d if spatial else nn.InstanceNorm1d
        return cls(channels, eps=eps, affine=bool(affine))
    if low == "layer":
        return LayerNorm(target, eps=eps)
    if low == "rms":
        return RMSNorm(channels, target, eps=eps, affine=True if affine is None else affine)
    if low == "group":
        groups = params.get("num_groups", 1)
        groups = groups if channels % groups == 0 else 1
        return nn.GroupNorm(groups, channels, eps=eps, affine=True if affine is None else affine)
    if low == "grn":
        return GlobalResponseNorm(channels, eps=eps)
    raise ValueError(f"unknown norm {name!r}")
