"""A VisionCore-style model (windowed weight-norm convs, GRN, splitrelu, concat behaviour,
ConvGRU, rotated-Gaussian readouts) trained by a 2-process gang ends identical on both ranks."""

import pytest

from tests.support.trainer_launch import kill_all, launch_gang

pytestmark = pytest.mark.slow


def test_two_rank_visioncore_style_run_ends_with_identical_weights(tmp_path, tiny_data):
    args = [
        "--model_config", "cpu_resnet_concat_convgru_gaussian",
        "--dataset_configs_path", "synthetic_tiny", "--data_root", str(tiny_data),
        "--run_dir", "run", "--batch_size", "16", "--max_epochs", "1",
        "--steps_per_epoch", "3", "--limit_val_batches", "1",
    ]  # fmt: skip
    gang = launch_gang(args, 2, tmp_path)
    try:
        codes = [proc.wait(timeout=400) for proc in gang]
    finally:
        kill_all(gang)
    assert codes == [0, 0], gang[0].output + gang[1].output
    result = gang[0].result()
    assert result["world_size"] == 2 and result["global_step"] == 3
    assert gang[0].weights_digest() == gang[1].weights_digest() == result["weights_sha256"]
