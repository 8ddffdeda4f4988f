"""``MultiDatasetModel``: the LightningModule training one core across many sessions.

Loss: per session in the batch, the dfs-weighted Poisson NLL divided by the dfs sum;
sessions are averaged. Validation: per-session bits/spike sufficient statistics are
summed on each rank, all-reduced in one collective, and only then turned into
``val_bps/<session>`` and ``val_bps_overall`` — so every rank logs the same exact numbers.
Checkpoints embed everything needed to rebuild the model (``load_from_corejob_checkpoint``).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from trainer import __version__
from trainer.contract.errors import ConfigError
from trainer.data.datasets import SessionInfo
from trainer.models import build_model
from trainer.models.objective import ValidationStats, masked_poisson_nll
from trainer.optim.optimizer import (
    OptimSettings,
    build_optimizer,
    build_scheduler,
    optimizer_steps_per_epoch,
)
from trainer.optim.regularizers import build_regularizers

CHECKPOINT_KEY = "corejob"
Batch = list[dict[str, Any]]


def session_from_dict(data: dict[str, Any] | SessionInfo) -> SessionInfo:
    """A ``SessionInfo`` from its ``asdict`` form (as stored in checkpoints and hparams)."""
    if isinstance(data, SessionInfo):
        return data
    fields = {
        **data,
        "image_shape": tuple(data["image_shape"]),
        "mean_rates": tuple(data["mean_rates"]),
    }
    return SessionInfo(**fields)


class MultiDatasetModel(pl.LightningModule):
    """The shared stages (``self.model.core``) + per-session adapters and readouts."""

    def __init__(
        self,
        model_config: dict[str, Any],
        sessions: Sequence[SessionInfo | dict[str, Any]],
        optim: OptimSettings | dict[str, Any] | None = None,
        dataset_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.sessions = [session_from_dict(s) for s in sessions]
        self.optim = optim if isinstance(optim, OptimSettings) else OptimSettings(**(optim or {}))
        self.model_config = copy.deepcopy(model_config)
        self.dataset_config = copy.deepcopy(dataset_config)
        self.names = [s.name for s in self.sessions]
        self.model = build_model(self.model_config, self.sessions)
        self.regularizers = build_regularizers(
            self.model_config.get("regularization"),
            list(self.model.named_parameters()),
            self.model_config.get("name", "model config"),
        )
        self._null_rates = [torch.tensor(s.mean_rates, dtype=torch.float32) for s in self.sessions]
        self._val: ValidationStats | None = None
        # Plain data only, so hparams.yaml, loggers and Lightning's own loader all work.
        self.save_hyperparameters(self._embedded_config())

    # ---- forward and loss -------------------------------------------------------------

    def forward(
        self,
        stim: torch.Tensor | None,
        dataset_idx: int,
        behavior: torch.Tensor | None = None,
        history: torch.Tensor | None = None,
    ):
        """The network output for one session: a log-rate or a rate (``self.model.log_rate``)."""
        return self.model(stim, dataset_idx, behavior, history)

    def compile(self, **options: Any) -> None:  # type: ignore[override]
        """``--compile``: ``torch.compile`` the shared core that training, validation and
        ``forward`` all run. (``nn.Module.compile`` compiles ``forward`` only, which
        ``training_step`` never calls; ``options`` are ``torch.compile``'s.)"""
        self.model.compile_core(**options)

    def _session_losses(
        self, batch: Batch
    ) -> list[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]]:
        """``(output, (nll_sum, weight))`` per session part of a grouped batch."""
        outputs = self.model.forward_sessions(
            [(b["stim"], b["dataset_idx"], b.get("behavior"), b.get("history")) for b in batch]
        )
        losses = []
        for b, output in zip(batch, outputs, strict=True):
            # float32 loss even under bf16 autocast: exp() and sums over many units need it.
            output = output.float()
            nll = masked_poisson_nll(
                output, b["robs"].float(), b["dfs"].float(), self.model.log_rate
            )
            losses.append((output, nll))
        return losses

    def regularization_penalty(self) -> torch.Tensor:
        """The model config's ``regularization`` penalties at this epoch (see regularizers)."""
        return self.regularizers.penalty(self.current_epoch, device=self.device)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        """The optimizer step, then the proximal regularizers (exact zeros, hard bounds)."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if len(self.regularizers):
            self.regularizers.apply_proximal(epoch, getattr(optimizer, "optimizer", optimizer))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        per_session = [
            nll_sum / weight.clamp_min(1.0) for _, (nll_sum, weight) in self._session_losses(batch)
        ]
        data_loss = torch.stack(per_session).mean()
        loss = data_loss + self.regularization_penalty()
        n = sum(int(b["robs"].shape[0]) for b in batch)
        self.log("train_loss", data_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    # ---- validation: exact statistics ---------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._val = ValidationStats([s.n_units for s in self.sessions], device=self.device)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        assert self._val is not None
        for b, (output, nll) in zip(batch, self._session_losses(batch), strict=True):
            idx = b["dataset_idx"]
            null = self._null_rates[idx].to(output.device)
            self._val.add(idx, self.model.rate(output), b["robs"], b["dfs"], null, nll)

    def on_validation_epoch_end(self) -> None:
        assert self._val is not None
        self._val.reduce()
        for key, value in self._val.summary(self.names).items():
            # Already identical on all ranks (computed from all-reduced sums): no sync.
            self.log(
                key, value, prog_bar=key == "val_bps_overall", sync_dist=False, rank_zero_only=False
            )

    # ---- optimizer ------------------------------------------------------------------------

    def configure_optimizers(self):
        patterns = [
            *self.model_config.get("weight_decay_exclude", []),
            *self.regularizers.decay_exempt_names(),
        ]
        optimizer = build_optimizer(
            self.model, self.optim, patterns, self.model_config.get("name", "model config")
        )
        scheduler = build_scheduler(optimizer, self.optim, self._optimizer_steps_per_epoch())
        if scheduler is None:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1},
        }

    def _optimizer_steps_per_epoch(self) -> int:
        """From the trainer's total-step estimate (honours limits, accumulation, max_steps)."""
        per_epoch = None
        trainer = self._trainer
        if trainer is not None:
            epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
            per_epoch = trainer.estimated_stepping_batches / (epochs or self.optim.max_epochs)
        return optimizer_steps_per_epoch(per_epoch, self.optim)

    # ---- checkpoints ------------------------------------------------------------------------

    def _embedded_config(self) -> dict[str, Any]:
        return {
            "model_config": copy.deepcopy(self.model_config),
            "sessions": [dataclasses.asdict(s) for s in self.sessions],
            "optim": dataclasses.asdict(self.optim),
            "dataset_config": copy.deepcopy(self.dataset_config),
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = {"version": __version__, **self._embedded_config()}

    @classmethod
    def load_from_corejob_checkpoint(
        cls, path: str | Path, map_location: str | torch.device = "cpu"
    ):
        """Rebuild the model from a checkpoint alone (no YAML files, no data needed)."""
        try:
            checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise ConfigError(str(path), "checkpoint", "file not found") from None
        meta = checkpoint.get(CHECKPOINT_KEY)
        if meta is None:
            raise ConfigError(
                str(path), CHECKPOINT_KEY, "not a corejob checkpoint (no embedded config)"
            )
        model = cls(
            meta["model_config"],
            meta["sessions"],
            OptimSettings(**meta["optim"]),
            meta["dataset_config"],
        )
        model.load_state_dict(checkpoint["state_dict"])
        return model
