"""Pretrained cores, frozen cores, and the gradual fine-tuning strategies."""

from types import SimpleNamespace

import pytest
import torch

from tests.support.trainer_fakes import FakeCoreModel, loader, quiet_trainer
from trainer.callbacks.finetune import (
    FinetuneCallback,
    FinetuneSettings,
    progressive_unfrozen_count,
)
from trainer.contract.errors import ConfigError
from trainer.models.pretrained import load_pretrained_core


def core_state(model: FakeCoreModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.model.core.state_dict().items()}


def fit(model, tmp_path, settings, epochs=2, **kwargs):
    kwargs.setdefault("limit_train_batches", 3)
    trainer = quiet_trainer(
        tmp_path, max_epochs=epochs, callbacks=[FinetuneCallback(settings)], **kwargs
    )
    trainer.fit(model, train_dataloaders=loader(), val_dataloaders=loader(16))
    return trainer


def test_pretrained_core_tensors_equal_the_source_checkpoint(tmp_path):
    torch.manual_seed(1)
    source = FakeCoreModel()
    path = tmp_path / "source.ckpt"
    torch.save({"state_dict": source.state_dict(), "corejob": {}}, path)
    torch.manual_seed(2)
    target = FakeCoreModel()
    readout_before = target.model.readouts[0].weight.detach().clone()
    report = load_pretrained_core(target.model.core, path)
    assert report.loaded == len(source.model.core.state_dict())  # params + BN buffers
    for key, value in source.model.core.state_dict().items():
        assert torch.equal(target.model.core.state_dict()[key], value), key
    assert torch.equal(target.model.readouts[0].weight, readout_before)  # readouts untouched


def test_pretrained_checkpoint_without_matching_core_fails(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {"model.readouts.0.weight": torch.zeros(2)}}, path)
    with pytest.raises(ConfigError, match="no vision-core tensor matches"):
        load_pretrained_core(FakeCoreModel().model.core, path)
    with pytest.raises(ConfigError, match="file not found"):
        load_pretrained_core(FakeCoreModel().model.core, tmp_path / "missing.ckpt")


def test_fixed_strategy_leaves_core_bit_identical_and_trains_readout(tmp_path):
    model = FakeCoreModel(lr=0.05)
    core_before = core_state(model)  # includes batch-norm running statistics
    readout_before = model.model.readouts[0].weight.detach().clone()
    fit(model, tmp_path, FinetuneSettings(strategy="fixed"))
    for key, value in model.model.core.state_dict().items():
        assert torch.equal(value, core_before[key]), key
    assert not torch.equal(model.model.readouts[0].weight, readout_before)


def test_progressive_unfreezes_readout_side_first_with_smaller_steps(tmp_path):
    settings = FinetuneSettings(
        strategy="progressive", unfreeze_start_epoch=1, unfreeze_every=1, unfrozen_lr_scale=0.1
    )
    assert [progressive_unfrozen_count(settings, e, 2) for e in range(4)] == [0, 1, 2, 2]
    model = FakeCoreModel(lr=0.05)
    before = core_state(model)
    fit(model, tmp_path, settings, epochs=1)
    after_one = core_state(model)
    assert all(torch.equal(after_one[k], before[k]) for k in before)  # epoch 0: all frozen
    fit(model, tmp_path / "b", settings, epochs=2)
    after = core_state(model)
    assert not torch.equal(after["convnet.0.weight"], before["convnet.0.weight"])
    assert torch.equal(after["frontend.0.weight"], before["frontend.0.weight"])


def test_unfrozen_core_takes_scaled_steps(tmp_path):
    torch.manual_seed(0)
    full, scaled = FakeCoreModel(lr=0.01), FakeCoreModel(lr=0.01)
    scaled.load_state_dict(full.state_dict())
    start = core_state(full)["convnet.0.weight"]
    for model, scale in ((full, 1.0), (scaled, 0.25)):
        settings = FinetuneSettings(
            strategy="progressive",
            unfreeze_start_epoch=0,
            unfreeze_every=5,
            unfrozen_lr_scale=scale,
        )
        fit(model, tmp_path / str(scale), settings, epochs=1, limit_train_batches=1)
    moved_full = float((core_state(full)["convnet.0.weight"] - start).norm())
    moved_scaled = float((core_state(scaled)["convnet.0.weight"] - start).norm())
    assert moved_scaled == pytest.approx(0.25 * moved_full, rel=1e-4)


def test_adaptive_unfreezes_when_the_metric_plateaus():
    callback = FinetuneCallback(FinetuneSettings(strategy="adaptive", patience=2, min_delta=0.01))
    model = FakeCoreModel()

    trainer = SimpleNamespace(sanity_checking=False, callback_metrics={})
    opened = []
    for value in (0.10, 0.20, 0.205, 0.21, 0.30, 0.30, 0.30, 0.30, 0.30):
        trainer.callback_metrics = {"val_bps_overall": torch.tensor(value)}
        callback.on_validation_end(trainer, model)
        opened.append(callback.unfrozen)
    assert opened == [0, 0, 0, 1, 1, 1, 2, 2, 2]


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="--finetune_strategy"):
        FinetuneSettings(strategy="gradual")
    with pytest.raises(ConfigError, match="--unfrozen_lr_scale"):
        FinetuneSettings(strategy="progressive", unfrozen_lr_scale=0.0)
