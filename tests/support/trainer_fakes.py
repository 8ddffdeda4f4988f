"""Small stand-ins for the trainer core so the extras are tested on their own.

``FakeCoreModel`` has the layout the real ``MultiDatasetModel`` promises (VisionCore's):
shared stages ``.model.frontend`` (with batch norm) and ``.model.convnet``, their view
``.model.core``, and ``.model.readouts`` (one per dataset).
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Core(nn.Module):
    def __init__(self, channels: int = 4):
        super().__init__()
        self.frontend = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1), nn.BatchNorm2d(channels)
        )
        self.convnet = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convnet(self.frontend(x))


class Net(nn.Module):
    def __init__(self, n_units: int = 3, channels: int = 4, size: int = 6):
        super().__init__()
        core = Core(channels)
        self.frontend, self.convnet = core.frontend, core.convnet
        self.readouts = nn.ModuleList([nn.Linear(channels * size * size, n_units)])

    @property
    def core(self) -> nn.ModuleDict:
        return nn.ModuleDict({"frontend": self.frontend, "convnet": self.convnet})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.convnet(self.frontend(x))
        return nn.functional.softplus(self.readouts[0](features.flatten(1)))


class RandomImages(Dataset):
    def __init__(self, n: int = 64, size: int = 6, n_units: int = 3, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 1, size, size, generator=g)
        self.y = torch.poisson(torch.ones(n, n_units), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]


class FakeCoreModel(pl.LightningModule):
    """Poisson regression with the real module's parameter layout and penalty hook."""

    def __init__(self, lr: float = 1e-2, regularizers=None):
        super().__init__()
        self.model = Net()
        self.lr = lr
        self.regularizers = regularizers

    def regularization_penalty(self) -> torch.Tensor:
        if self.regularizers is None:
            return torch.zeros(())
        return self.regularizers.penalty(self.current_epoch)

    def training_step(self, batch, batch_idx):
        x, y = batch
        rate = self.model(x)
        loss = (rate - y * torch.log(rate + 1e-8)).mean() + self.regularization_penalty()
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        rate = self.model(x)
        self.log("val_bps_overall", -(rate - y * torch.log(rate + 1e-8)).mean())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=0.1)


def loader(n: int = 64, batch_size: int = 8) -> DataLoader:
    return DataLoader(RandomImages(n), batch_size=batch_size)


def quiet_trainer(tmp_path, **kwargs) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
    )
    return pl.Trainer(**{**defaults, **kwargs})
