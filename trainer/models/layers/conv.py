"""3-D convolutions with an optional anti-aliasing window and weight norm.

Both are ``torch.nn.utils.parametrize`` parametrizations of ``conv.weight``, registered in
VisionCore's order (weight norm first, window second), so the effective kernel is
``mask * g * v / |v|`` and the state dict holds ``parametrizations.weight.original``,
``.0.v`` and ``.0.g``. Inside ``parametrize.cached()`` (the model's forward) each
effective kernel is computed once per step however often the conv runs.
"""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

import torch
from torch import nn
from torch.nn.utils import parametrize


def triple(value: int | list[int] | tuple[int, ...]) -> tuple[int, int, int]:
    """``k`` -> ``(k, k, k)``; a 3-sequence stays as it is."""
    if isinstance(value, int):
        return (value, value, value)
    if len(value) != 3:
        raise ValueError(f"expected 3 values (T, H, W), got {value!r}")
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def window_1d(name: str, size: int, power: float = 1.0, **kwargs: Any) -> torch.Tensor:
    """A ``torch.signal.windows`` window raised to ``power`` and scaled to peak 1."""
    w = getattr(torch.signal.windows, name)(size, **kwargs).pow(power)
    return w / w.max().clamp_min(1e-12)


def separable_window(kernel: tuple[int, int, int], name: str, kwargs: dict) -> torch.Tensor:
    """``(1, 1, kT, kH, kW)`` product of 1-D windows; axes shorter than 5 taps stay flat."""
    axes = [window_1d(name, n, **kwargs) if n >= 5 else torch.ones(n) for n in kernel]
    mask = axes[0].view(-1, 1, 1) * axes[1].view(1, -1, 1) * axes[2].view(1, 1, -1)
    return mask.view(1, 1, *kernel)


class WeightNorm(nn.Module):
    """``g * v / |v|`` per slice of ``dim``; ``g`` fixed at 1 with ``keep_unit_norm``.

    Like VisionCore's, it starts from the weight it is registered on and ignores its input
    afterwards (``v`` is the trained tensor; ``original`` is frozen, see the README).
    Weight decay goes to ``g``, the kernel's magnitude, not to ``v``: the kernel does not
    depend on ``|v|``, so decaying ``v`` would only speed up its updates (README).
    """

    no_weight_decay = ("v",)
    kernel_magnitudes = ("g",)

    def __init__(self, weight: torch.Tensor, dim: int = 0, keep_unit_norm: bool = False):
        super().__init__()
        self.dim, self.eps = dim, 1e-12
        self.v = nn.Parameter(weight.detach().clone())
        if keep_unit_norm:
            self.g = nn.Parameter(torch.ones(weight.shape[dim]), requires_grad=False)
        else:
            self.g = nn.Parameter(torch.linalg.vector_norm(weight.detach(), dim=self._red(weight)))

    def _red(self, w: torch.Tensor) -> tuple[int, ...]:
        return tuple(d for d in range(w.ndim) if d != self.dim)

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(self.v, dim=self._red(self.v), keepdim=True)
        shape = [1] * self.v.ndim
        shape[self.dim] = -1
        return self.g.view(shape) * (self.v / norm.clamp_min(self.eps))

    @torch.no_grad()
    def set_direction(self, weight: torch.Tensor) -> None:
        """Make the effective weight ``weight`` (its norm too unless g is fixed)."""
        self.v.copy_(weight)
        if self.g.requires_grad:
            self.g.copy_(torch.linalg.vector_norm(weight, dim=self._red(weight)))


class Window(nn.Module):
    """Multiplies the kernel by a fixed mask (a non-persistent buffer, as in VisionCore)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


class ConvOptions(TypedDict, total=False):
    """A conv layer's geometry and kernel parametrization (``conv_params`` keys)."""

    stride: Any
    padding: Any
    dilation: Any
    padding_mode: str
    aa_signal: bool
    aa_window: str
    aa_window_kwargs: dict | None
    use_weight_norm: bool
    keep_unit_norm: bool
    weight_norm_dim: int


def parametrized_conv3d(in_channels: int, out_channels: int, kernel_size: Any, groups: int,
                        bias: bool, options: ConvOptions) -> nn.Conv3d:  # fmt: skip
    """An ``nn.Conv3d`` with weight norm, then the window, on its weight (VisionCore's order).

    ``weight_norm_dim`` is the slice dimension of weight norm (VisionCore honours it for
    depthwise kernels only; ``StandardConv`` passes 0, as VisionCore does).
    """
    kernel = triple(kernel_size)
    conv = nn.Conv3d(
        in_channels, out_channels, kernel,
        triple(options.get("stride", 1)), triple(options.get("padding", 0)),
        triple(options.get("dilation", 1)), groups=groups, bias=bias,
        padding_mode=options.get("padding_mode", "replicate"),
    )  # fmt: skip
    if options.get("use_weight_norm", False):
        dim, unit = options.get("weight_norm_dim", 0), options.get("keep_unit_norm", False)
        parametrize.register_parametrization(
            conv, "weight", WeightNorm(conv.weight, dim, unit), unsafe=True
        )
        conv.parametrizations.weight.original.requires_grad_(False)
    if options.get("aa_signal", False):
        kwargs = dict(options.get("aa_window_kwargs") or {})
        mask = separable_window(kernel, options.get("aa_window", "hann"), kwargs)
        parametrize.register_parametrization(conv, "weight", Window(mask), unsafe=True)
    return conv


@torch.no_grad()
def set_effective_weight(conv: nn.Conv3d, weight: torch.Tensor) -> None:
    """Initialise the trained tensor so the *effective* kernel starts from ``weight``.

    VisionCore writes inits into the computed (parametrized) weight, where they are lost;
    here they reach ``v`` (weight norm) or ``original`` (window only; the window still
    multiplies it, as it would any trained value).
    """
    if not parametrize.is_parametrized(conv, "weight"):
        conv.weight.copy_(weight)
        return
    chain = conv.parametrizations.weight
    if isinstance(chain[0], WeightNorm):
        chain[0].set_direction(weight)
    else:
        chain.original.copy_(weight)


class StandardConv(nn.Module):
    """``nn.Conv3d`` on ``(B, C, T, H, W)``; causal/external padding is the caller's."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, groups: int = 1,
                 bias: bool = True, **options: Unpack[ConvOptions]):  # fmt: skip
        super().__init__()
        options["weight_norm_dim"] = 0  # VisionCore's standard conv ignores the setting
        self.conv = parametrized_conv3d(
            in_channels, out_channels, kernel_size, groups, bias, options
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    @property
    def weight(self) -> torch.Tensor:
        """The effective kernel (after weight norm and window)."""
        return self.conv.weight


class DepthwiseConv(nn.Module):
    """Per-channel ``(kT, kH, kW)`` conv, then a 1x1x1 pointwise conv; weight norm on both,
    the window on the per-channel kernel only."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, groups: int = 1,
                 bias: bool = True, **options: Unpack[ConvOptions]):  # fmt: skip
        super().__init__()
        del groups  # the depthwise stage is grouped by construction
        self.depthwise = parametrized_conv3d(
            in_channels, in_channels, kernel_size, in_channels, False, options
        )
        pointwise: ConvOptions = {
            "use_weight_norm": options.get("use_weight_norm", False),
            "keep_unit_norm": options.get("keep_unit_norm", False),
            "padding_mode": "zeros",  # nn.Conv3d's default, as VisionCore builds it
        }
        self.pointwise = parametrized_conv3d(in_channels, out_channels, 1, 1, bias, pointwise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


CONV_TYPES = {"standard": StandardConv, "depthwise": DepthwiseConv}
