"""The env contract (docs/CONTRACT.md): Kubeflow, Trainer v2, torchrun and single layouts."""

from datetime import timedelta

import pytest
import torch
from pytorch_lightning.plugins.environments import KubeflowEnvironment, TorchElasticEnvironment

from trainer.contract import exit_codes
from trainer.contract.distributed import (
    configure_process,
    distributed_layout,
    is_communication_failure,
    trainer_kwargs,
)
from trainer.contract.errors import ConfigError

KUBEFLOW = {"MASTER_ADDR": "job-master-0", "MASTER_PORT": "23456", "WORLD_SIZE": "3", "RANK": "2"}


def test_single_process_without_launcher_variables():
    layout = distributed_layout({"OMP_NUM_THREADS": "2"}, "cpu")
    assert (layout.kind, layout.world_size, layout.rank) == ("single", 1, 0)
    assert layout.torch_threads == 2 and not layout.is_distributed
    assert trainer_kwargs(layout) == {"strategy": "auto", "num_nodes": 1, "devices": 1}


def test_kubeflow_one_process_per_pod_needs_explicit_environment():
    layout = distributed_layout(KUBEFLOW, "cpu")
    assert (layout.kind, layout.world_size, layout.rank) == ("kubeflow", 3, 2)
    assert (layout.num_nodes, layout.devices, layout.backend) == (3, 1, "gloo")
    kwargs = trainer_kwargs(layout, ddp_timeout_s=42)
    strategy = kwargs["strategy"]
    assert (kwargs["num_nodes"], kwargs["devices"]) == (3, 1)
    assert isinstance(strategy.cluster_environment, KubeflowEnvironment)
    assert strategy._process_group_backend == "gloo"
    assert strategy._timeout == timedelta(seconds=42)
    assert strategy._ddp_kwargs["find_unused_parameters"] is True


def test_kubeflow_master_only_job_is_a_single_process():
    env = {**KUBEFLOW, "WORLD_SIZE": "1", "RANK": "0"}
    assert distributed_layout(env, "cpu").kind == "single"


def test_torchrun_several_processes_per_pod_uses_nccl_on_gpu():
    env = {
        **KUBEFLOW,
        "WORLD_SIZE": "8",
        "RANK": "5",
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "4",
        "TORCHELASTIC_RUN_ID": "job",
    }
    layout = distributed_layout(env, "gpu")
    assert (layout.kind, layout.num_nodes, layout.devices, layout.rank) == ("torchrun", 2, 4, 5)
    assert layout.backend == "nccl"
    strategy = trainer_kwargs(layout)["strategy"]
    assert isinstance(strategy.cluster_environment, TorchElasticEnvironment)


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({**KUBEFLOW, "WORLD_SIZE": "two"}, "WORLD_SIZE"),
        ({**KUBEFLOW, "RANK": "3"}, "RANK"),
        ({"OMP_NUM_THREADS": "0"}, "OMP_NUM_THREADS"),
        (
            {**KUBEFLOW, "WORLD_SIZE": "6", "LOCAL_WORLD_SIZE": "4", "TORCHELASTIC_RUN_ID": "x"},
            "WORLD_SIZE",
        ),
    ],
)
def test_bad_launcher_variables_are_config_errors_naming_the_variable(env, field):
    with pytest.raises(ConfigError, match=field) as caught:
        distributed_layout(env, "cpu")
    assert caught.value.exit_code == exit_codes.CONFIG_ERROR


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("[gloo/tcp/pair.cc:534] Connection closed by peer [1.2.3.4]"), True),
        (RuntimeError("Connection reset by peer"), True),
        (torch.distributed.DistBackendError("NCCL watchdog"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("Connection closed by peer"), False),
    ],
)
def test_communication_failures_are_told_apart_from_bugs(error, expected):
    assert is_communication_failure(error) is expected


def test_communication_failure_found_in_the_cause_chain():
    try:
        try:
            raise RuntimeError("Connection closed by peer")
        except RuntimeError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert is_communication_failure(outer)


# Kubeflow Trainer v2 (TrainJob, torch plugin): only PET_* variables, one process per node.
TRAINER_V2 = {
    "PET_NNODES": "3",
    "PET_NPROC_PER_NODE": "1",
    "PET_NODE_RANK": "2",
    "PET_MASTER_ADDR": "job-node-0-0.job",
    "PET_MASTER_PORT": "29500",
}


def test_trainer_v2_pet_only_layout_derives_ranks_and_exports_torch_variables(monkeypatch):
    layout = distributed_layout(TRAINER_V2, "cpu")
    assert (layout.kind, layout.world_size, layout.rank) == ("trainer_v2", 3, 2)
    assert (layout.num_nodes, layout.devices, layout.backend) == (3, 1, "gloo")
    assert dict(layout.exports) == {
        "MASTER_ADDR": "job-node-0-0.job",
        "MASTER_PORT": "29500",
        "WORLD_SIZE": "3",
        "RANK": "2",
    }
    for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"):
        monkeypatch.setenv(name, "stale")  # recorded, so the test leaves os.environ as it was
    configure_process(layout)
    environment = trainer_kwargs(layout)["strategy"].cluster_environment
    assert isinstance(environment, KubeflowEnvironment)
    assert (environment.world_size(), environment.global_rank()) == (3, 2)
    assert (environment.main_address, environment.main_port) == ("job-node-0-0.job", 29500)


def test_trainer_v2_single_node_is_a_single_process():
    layout = distributed_layout({**TRAINER_V2, "PET_NNODES": "1", "PET_NODE_RANK": "0"}, "cpu")
    assert (layout.kind, layout.exports) == ("single", ())


def test_torchrun_under_trainer_v2_wins_over_the_pet_variables():
    env = {**TRAINER_V2, "PET_NPROC_PER_NODE": "4", "WORLD_SIZE": "12", "RANK": "9"}
    env |= {"LOCAL_WORLD_SIZE": "4", "TORCHELASTIC_RUN_ID": "job"}
    layout = distributed_layout(env, "gpu")
    assert (layout.kind, layout.num_nodes, layout.devices, layout.rank) == ("torchrun", 3, 4, 9)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"PET_NPROC_PER_NODE": "4"}, "PET_NPROC_PER_NODE"),
        ({"PET_NPROC_PER_NODE": "auto"}, "PET_NPROC_PER_NODE"),
        ({"PET_NNODES": "1:4"}, "PET_NNODES"),
        ({"PET_NODE_RANK": "3"}, "PET_NODE_RANK"),
        ({"PET_MASTER_PORT": "http"}, "PET_MASTER_PORT"),
    ],
)
def test_bad_trainer_v2_variables_are_config_errors_naming_the_variable(change, field):
    with pytest.raises(ConfigError, match=field):
        distributed_layout({**TRAINER_V2, **change}, "cpu")
