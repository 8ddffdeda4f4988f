"""Regularizers: parsing, schedules, and that they move exactly the matched parameters."""

import pytest
import torch
from torch import nn

from trainer.contract.errors import ConfigError
from trainer.optim.regularizers import Schedule, build_regularizers, parse_regularizer_specs


def two_layer() -> nn.Module:
    torch.manual_seed(0)
    return nn.ModuleDict({"core": nn.Linear(4, 4), "readout": nn.Linear(4, 2)})


def test_penalty_moves_only_matched_parameters():
    net = two_layer()
    regs = build_regularizers(
        [{"name": "sparse", "type": "l1", "lambda": 0.5, "apply_to": ["readout/weight"]}],
        net.named_parameters(),
    )
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    regs.penalty(epoch=0).backward()
    opt.step()
    changed = {n for n, p in net.named_parameters() if not torch.equal(p, before[n])}
    assert changed == {"readout.weight"}
    assert net["readout"].weight.abs().sum() < before["readout.weight"].abs().sum()


@pytest.mark.parametrize("kind", ["l2", "group_lasso", "orthogonality", "ortho"])
def test_every_penalty_type_is_positive_and_differentiable(kind):
    net = two_layer()
    regs = build_regularizers(
        [{"type": kind, "lambda": 1.0, "apply_to": ["core/weight"]}], net.named_parameters()
    )
    value = regs.penalty(0)
    value.backward()
    assert value.item() > 0
    assert net["core"].weight.grad.abs().sum() > 0 and net["readout"].weight.grad is None


def test_proximal_l1_makes_exact_zeros_and_clamps_bound():
    net = two_layer()
    specs = [
        {"name": "prox", "type": "proximal_l1", "lambda": 1.0, "apply_to": ["readout/weight"]},
        {"name": "box", "type": "proximal_clamp", "lambda": 0.05, "apply_to": ["core/bias"]},
        {
            "name": "pos",
            "type": "proximal_clamp_positive",
            "lambda": 0.1,
            "apply_to": ["readout/bias"],
        },
        {"name": "min", "type": "proximal_clamp_min", "lambda": 0.2, "apply_to": ["core/weight"]},
    ]
    regs = build_regularizers(specs, net.named_parameters())
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    assert regs.penalty(0).item() == 0.0  # proximal types add no loss
    regs.apply_proximal(epoch=0, optimizer=opt)
    w = net["readout"].weight
    assert int((w == 0).sum()) > 0  # soft-threshold by lambda * lr = 0.5
    assert net["core"].bias.abs().max() <= 0.05
    assert net["readout"].bias.min() >= 0 and net["readout"].bias.max() <= 0.1
    assert net["core"].weight.min() >= 0.2


def test_proximal_l1_uses_adam_step_sizes_and_skips_frozen():
    net = two_layer()
    net["core"].requires_grad_(False)
    frozen = net["core"].weight.detach().clone()
    regs = build_regularizers(
        [{"type": "proximal_l1", "lambda": 10.0, "apply_to": ["weight"]}], net.named_parameters()
    )
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    net["readout"](torch.randn(3, 4)).sum().backward()
    grad = net["readout"].weight.grad.clone()
    opt.step()
    before = net["readout"].weight.detach().clone()
    regs.apply_proximal(0, opt)
    assert torch.equal(net["core"].weight, frozen)
    # first Adam step: v_hat = g^2, so each weight's threshold is lambda * lr / |g|
    threshold = 10.0 * 1e-3 / (grad.abs() + 1e-8)
    expected = torch.sign(before) * (before.abs() - threshold).clamp(min=0)
    assert torch.allclose(net["readout"].weight, expected, atol=1e-6)


def test_schedules():
    assert Schedule("constant").weight(2.0, 0) == 2.0
    warm = Schedule("warmup", start_epoch=3)
    assert (warm.weight(2.0, 2), warm.weight(2.0, 3)) == (0.0, 2.0)
    ramp = Schedule("linear_ramp", start_epoch=2, end_epoch=6)
    assert [ramp.weight(1.0, e) for e in (0, 2, 4, 6, 9)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    decay = Schedule("linear_decay", start_epoch=0, end_epoch=4, start_lambda=1.0)
    assert [decay.weight(0.2, e) for e in (0, 2, 4, 8)] == pytest.approx([1.0, 0.6, 0.2, 0.2])


def test_schedule_scales_penalty_by_epoch():
    net = two_layer()
    regs = build_regularizers(
        [
            {
                "type": "l2",
                "lambda": 1.0,
                "apply_to": ["core/weight"],
                "schedule": {"kind": "linear_ramp", "start_epoch": 0, "end_epoch": 4},
            }
        ],
        net.named_parameters(),
    )
    assert regs.penalty(0).item() == 0.0
    assert regs.penalty(2).item() == pytest.approx(0.5 * regs.penalty(4).item())


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"type": "l3", "lambda": 1, "apply_to": ["x"]}, "regularization[0].type"),
        ({"type": "l1", "apply_to": ["x"]}, "regularization[0].lambda"),
        ({"type": "l1", "lambda": 1}, "regularization[0].apply_to"),
        (
            {"type": "l1", "lambda": 1, "apply_to": ["x"], "schedule": {"kind": "cosine"}},
            "regularization[0].schedule.kind",
        ),
        ({"type": "l1", "lambda": 1, "apply_to": ["x"], "lamda": 2}, "regularization[0].lamda"),
    ],
)
def test_bad_entries_name_the_field(entry, field):
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_regularizer_specs([entry], "model.yaml")


def test_unmatched_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match=r"model.yaml: regularization\[0\].apply_to: .*readouts"):
        build_regularizers(
            [{"type": "l1", "lambda": 1, "apply_to": ["readouts/featurez"]}],
            two_layer().named_parameters(),
            "model.yaml",
        )
