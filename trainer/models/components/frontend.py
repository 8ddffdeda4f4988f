"""Frontends: learnable temporal filtering over the stimulus lags.

V1 temporal kernels are smooth and biphasic; initialising the filters as Gaussian
derivatives puts the frontend near that family from the first step, so the spatial
core trains on temporally filtered frames instead of having to discover them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer.contract.errors import ConfigError
from trainer.models.registry import BuildContext, Field, register


def gaussian_derivative_bank(n_filters: int, size: int) -> torch.Tensor:
    """``(n_filters, size)`` unit-norm Gaussian, 1st and 2nd derivatives at several widths.

    Centred towards the recent end of the window (the last index), where visual responses
    have most of their temporal weight.
    """
    t = torch.arange(size, dtype=torch.float64)
    bank = []
    for i in range(n_filters):
        order, octave = i % 3, i // 3
        sigma = max(0.75, size / 6.0) * (1.5**octave)
        centre = (size - 1) - min(size / 3.0, 2.0 * sigma)
        z = (t - centre) / sigma
        g = torch.exp(-0.5 * z**2)
        kernel = (g, -z * g, (z**2 - 1) * g)[order]
        bank.append(kernel / kernel.norm().clamp_min(1e-12))
    return torch.stack(bank).float()


class LearnableTemporalConv(nn.Module):
    """Valid temporal convolution ``(B, C, L, H, W) -> (B, K, L - k + 1, H, W)``.

    Valid padding keeps it causal: output step ``t`` sees only lags up to ``t``.
    """

    def __init__(self, in_channels: int, n_filters: int, kernel_size: int, init: str, bias: bool):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, n_filters, (kernel_size, 1, 1), bias=bias)
        if init == "gaussian_derivatives":
            bank = gaussian_derivative_bank(n_filters, kernel_size) / math.sqrt(in_channels)
            with torch.no_grad():
                self.conv.weight.copy_(
                    bank.view(n_filters, 1, kernel_size, 1, 1).expand_as(self.conv.weight)
                )
                if bias:
                    self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@register("frontend", "none", doc="No temporal filtering: every lag stays a time step.")
def build_no_frontend(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    return None, ctx.in_channels


@register(
    "frontend",
    "learnable_temporal",
    {
        "kernel_size": Field(int, None, nullable=True, doc="lags per filter; null = all lags"),
        "num_channels": Field(int, 4, doc="number of temporal filters"),
        "init_type": Field(str, "gaussian_derivatives", choices=("gaussian_derivatives", "random")),
        "bias": Field(bool, False),
    },
    doc="Learnable causal temporal convolution over the stimulus lags.",
)
def build_temporal_frontend(params: dict, ctx: BuildContext) -> tuple[nn.Module | None, int]:
    size = params["kernel_size"] or ctx.n_lags
    if size > ctx.n_lags:
        raise ConfigError(
            ctx.source,
            "frontend.params.kernel_size",
            f"{size} exceeds the dataset's {ctx.n_lags} lags; use at most {ctx.n_lags} or null",
        )
    module = LearnableTemporalConv(
        ctx.in_channels, params["num_channels"], size, params["init_type"], params["bias"]
    )
    return module, params["num_channels"]
