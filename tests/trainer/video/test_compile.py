"""``--compile`` on the video family reaches what the training step runs."""

from __future__ import annotations

import pytest
import torch

from trainer.video.data.datamodule import VideoDM
from trainer.video.module import MultiViewVideoModel


def test_compile_compiles_what_the_training_step_runs(small_model_config, micro_dataset):
    """The training step's network pass runs the captured graph, with eager's loss."""
    datamodule = VideoDM(micro_dataset, batch_size=4, steps_per_epoch=1)
    datamodule.setup("fit")
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)

    def module() -> MultiViewVideoModel:
        torch.manual_seed(0)
        return MultiViewVideoModel(
            small_model_config, datamodule.vocabularies, datamodule.class_counts()
        )

    eager, compiled = module(), module()
    graphs: list[torch.fx.GraphModule] = []
    runs: list[int] = []

    def recording_backend(gm: torch.fx.GraphModule, example_inputs):
        graphs.append(gm)

        def run(*args):
            runs.append(len(graphs))
            return gm.forward(*args)

        return run

    compiled.compile(backend=recording_backend)
    expected = eager.training_step(batch, 0)
    loss = compiled.training_step(batch, 0)
    assert graphs and runs, "the training step did not run a compiled graph"
    convs = [n for g in graphs for n in g.graph.nodes if "conv" in str(n.target)]
    assert convs, "the compiled graphs do not hold the backbone's convolutions"
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
