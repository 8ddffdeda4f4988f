"""MultiDatasetModel: training, exact validation logging, optimizers, checkpoints."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from tests.support.model_fakes import fake_batches, fake_sessions, loader
from trainer import __version__
from trainer.contract.errors import ConfigError
from trainer.models.config import load_model_config
from trainer.models.lightning_module import CHECKPOINT_KEY, MultiDatasetModel
from trainer.models.objective import ValidationStats, masked_poisson_nll
from trainer.optim.optimizer import OptimSettings

DATASET = {"name": "fake", "sessions": ["sess0", "sess1"]}


def _module(name="res_small", **optim) -> MultiDatasetModel:
    torch.manual_seed(0)
    settings = OptimSettings(
        **{"learning_rate": 1e-2, "max_epochs": 2, "warmup_epochs": 0.5, **optim}
    )
    return MultiDatasetModel(load_model_config(name), fake_sessions(), settings, DATASET)


def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    defaults = dict(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    return pl.Trainer(**{**defaults, **kwargs})


def test_loss_decreases_when_overfitting_a_fixed_batch():
    torch.manual_seed(0)
    sessions = fake_sessions(image_shapes=((12, 12), (10, 10)))
    module = MultiDatasetModel(load_model_config("res_small"), sessions, OptimSettings())
    batch = fake_batches(sessions, batch=8, seed=3)
    opt = torch.optim.AdamW(module.parameters(), lr=5e-3)
    losses = []
    for step in range(15):
        opt.zero_grad()
        loss = module.training_step(batch, step)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses[::3]


def test_fully_masked_session_is_harmless_and_penalty_is_added(monkeypatch):
    module = _module()
    batch = fake_batches(fake_sessions())
    batch[1]["dfs"].zero_()
    batch[1]["robs"].fill_(float("nan"))
    torch.manual_seed(1)  # the Gaussian readout jitters positions while training
    base = module.training_step(batch, 0)
    assert torch.isfinite(base)
    monkeypatch.setattr(module, "regularization_penalty", lambda: torch.tensor(1.5))
    torch.manual_seed(1)
    assert module.training_step(batch, 0).item() == pytest.approx(base.item() + 1.5)


def test_fit_logs_exact_validation_metrics_and_steps_the_schedule(tmp_path):
    module = _module(lr_scheduler="cosine")
    sessions = fake_sessions()
    train = [fake_batches(sessions, seed=s) for s in range(3)]
    val = [fake_batches(sessions, seed=10 + s) for s in range(2)]
    trainer = _trainer(tmp_path)
    trainer.fit(module, loader(train), loader(val))
    metrics = trainer.callback_metrics
    # Recompute the validation statistics by hand with the trained weights.
    module.eval()
    stats = ValidationStats([s.n_units for s in sessions])
    with torch.no_grad():
        for batch in val:
            for b in batch:
                out = module(b["stim"], b["dataset_idx"], b["behavior"])
                null = torch.tensor(sessions[b["dataset_idx"]].mean_rates)
                nll = masked_poisson_nll(out, b["robs"], b["dfs"], True)
                stats.add(b["dataset_idx"], out.exp(), b["robs"], b["dfs"], null, nll)
    expected = stats.summary(module.names)
    assert set(expected) == {"val_loss", "val_bps/sess0", "val_bps/sess1", "val_bps_overall"}
    for key, value in expected.items():
        assert float(metrics[key]) == pytest.approx(value, rel=1e-5), key
    assert "train_loss" in metrics
    # 6 optimizer steps, 3 per epoch, warmup 0.5 epoch -> round(1.5) = 2 warmup steps.
    scheduler = trainer.lr_scheduler_configs[0]
    assert scheduler.interval == "step"
    assert scheduler.scheduler.last_epoch == trainer.global_step == 6
    assert scheduler.scheduler.warmup_steps == 2 and scheduler.scheduler.total_steps == 6


def test_checkpoint_rebuilds_the_model_from_the_file_alone(tmp_path):
    module = _module()
    sessions = fake_sessions()
    trainer = _trainer(tmp_path, max_epochs=1)
    trainer.fit(module, loader([fake_batches(sessions)]), loader([fake_batches(sessions, seed=9)]))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)

    meta = torch.load(path, weights_only=True)[CHECKPOINT_KEY]
    assert meta["version"] == __version__
    assert meta["model_config"] == load_model_config("res_small")
    assert meta["dataset_config"] == DATASET
    assert [s["name"] for s in meta["sessions"]] == ["sess0", "sess1"]

    rebuilt = MultiDatasetModel.load_from_corejob_checkpoint(path).eval()
    module.eval()
    for key, value in module.state_dict().items():
        assert torch.equal(value, rebuilt.state_dict()[key]), key
    b = fake_batches(sessions, seed=5)[1]
    with torch.no_grad():
        assert torch.equal(
            module(b["stim"], 1, b["behavior"]), rebuilt(b["stim"], 1, b["behavior"])
        )
    assert rebuilt.sessions == module.sessions and rebuilt.optim == module.optim
    # Lightning's own loader works too (hyper-parameters are plain data).
    lightning = MultiDatasetModel.load_from_checkpoint(path, weights_only=True)
    assert torch.equal(lightning.model.readouts[1].mean, module.model.readouts[1].mean)


def test_loading_a_foreign_or_missing_checkpoint_is_a_config_error(tmp_path):
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ConfigError, match="not a corejob checkpoint"):
        MultiDatasetModel.load_from_corejob_checkpoint(foreign)
    with pytest.raises(ConfigError, match="file not found"):
        MultiDatasetModel.load_from_corejob_checkpoint(tmp_path / "none.ckpt")


def test_parameters_follow_visioncores_module_tree():
    module = _module("res_small_concat_gru")
    names = [n for n, _ in module.named_parameters()]
    stages = ("frontend.", "convnet.", "modulator.", "recurrent.", "readouts.")
    assert all(n.startswith(tuple(f"model.{s}" for s in stages)) for n in names)
    assert any(n.startswith("model.modulator.encoder.") for n in names)
    assert any(n.startswith("model.recurrent.cells.0.update_gate.") for n in names)
    assert any(n.startswith("model.convnet.layers.0.main_block.components.conv.") for n in names)
    assert len(module.model.readouts) == 2
    assert list(module.model.core) == ["frontend", "convnet", "modulator", "recurrent"]


def test_one_core_pass_per_input_shape_gives_per_session_outputs():
    from tests.support.model_fakes import fake_batch
    from trainer.models import build_model

    sessions = fake_sessions(image_shapes=((20, 20), (16, 16), (20, 20)), units=(5, 3, 4))
    model = build_model(load_model_config("res_small"), sessions).eval()
    parts = [fake_batch(info, i, batch=3 + i) for i, info in enumerate(sessions)]
    calls = []
    model.frontend.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    fused = model.forward_sessions(
        [(p["stim"], p["dataset_idx"], p["behavior"], None) for p in parts]
    )
    assert sorted(calls) == [4, 3 + 5]  # sessions 0 and 2 share a pass
    calls.clear()
    for p, out in zip(parts, fused, strict=True):
        alone = model(p["stim"], p["dataset_idx"], p["behavior"])
        assert out.shape == alone.shape and torch.allclose(out, alone, atol=1e-5)


def test_compile_compiles_what_the_training_step_runs():
    """``--compile`` (``model.compile()``) must reach the training step's forward: its core
    pass runs the compiled graph, with eager's loss and gradients for every core weight."""
    sessions = fake_sessions(image_shapes=((16, 16), (16, 16)))
    batch = fake_batches(sessions)
    eager, compiled = _module(), _module()
    graphs: list[torch.fx.GraphModule] = []
    runs = []

    def recording_backend(gm: torch.fx.GraphModule, example_inputs):
        graphs.append(gm)

        def run(*args):
            runs.append(len(graphs))
            return gm.forward(*args)  # the captured graph, as is

        return run

    compiled.compile(backend=recording_backend)
    torch.manual_seed(1)
    expected = eager.training_step(batch, 0)
    torch.manual_seed(1)
    loss = compiled.training_step(batch, 0)
    assert len(graphs) == 1 and runs == [1]  # one core pass for both sessions, compiled
    convs = [n for n in graphs[0].graph.nodes if "conv" in str(n.target)]
    assert len(convs) >= 5, "the compiled graph does not hold the core's convolutions"
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert all(p.grad is not None for p in compiled.model.core.parameters() if p.requires_grad)
