"""Every supported shape of job renders to YAML a Training Operator v1.9 cluster accepts.

Each case is validated strictly (CRD schema with unknown fields rejected + webhook rules)
and then checked for the behaviour that case exists for.
"""

from __future__ import annotations

from typing import Any

import pytest

from corejob.job.validation import validate_job
from tests.chart.conftest import container, env_of, pod_spec, render

MATRIX: dict[str, dict[str, Any]] = {
    "workers-0": {"workers": 0},
    "workers-1": {"workers": 1},
    "workers-3": {"workers": 3},
    "gpus-2": {"workers": 1, "gpusPerReplica": 2},
    "nproc-4-gpus-4": {"workers": 3, "gpusPerReplica": 4, "nprocPerNode": 4},
    "pvc": {
        "workers": 2,
        "data": {"existingClaim": "corejob-data", "readOnly": True, "subPath": "sessions"},
        "checkpoints": {"existingClaim": "corejob-checkpoints", "subPath": "team-a"},
    },
    "emptydir-sized": {"data": {"sizeLimit": "20Gi"}, "checkpoints": {"sizeLimit": "5Gi"}},
    "wandb-secret": {
        "wandb": {"mode": "online", "entity": "lab", "apiKeySecret": {"name": "corejob-wandb"}}
    },
    "elastic": {"workers": 3, "elasticPolicy": {"enabled": True, "minReplicas": 2}},
    "placement": {
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
        "serviceAccountName": "corejob-trainer",
        "priorityClassName": "high",
        "podAnnotations": {"example.com/owner": "lab"},
        "podLabels": {"team": "vision"},
        "env": [{"name": "NCCL_DEBUG", "value": "INFO"}],
        "image": {"pullSecrets": ["ghcr"], "pullPolicy": "Always"},
    },
    "run-policy": {
        "runPolicy": {
            "suspend": True,
            "activeDeadlineSeconds": 3600,
            "ttlSecondsAfterFinished": None,
            "cleanPodPolicy": "All",
            "schedulingPolicy": {
                "queue": "q",
                "priorityClass": "p",
                "minAvailable": 2,
                "scheduleTimeoutSeconds": 60,
            },
        },
        "restartPolicy": "OnFailure",
    },
    "trainer-args": {
        "trainer": {
            "maxEpochs": 5,
            "batchSize": 32,
            "learningRate": 0.0003,
            "seed": 0,
            "precision": "bf16-mixed",
            "stepsPerEpoch": 1000000,
            "extraArgs": ["--weight_decay", "0.01"],
        },
    },
    "sweep": {"sweep": "sweep-1", "configHash": "abc123", "jobName": "res-small-abc123"},
}


@pytest.fixture(scope="module", params=sorted(MATRIX), ids=sorted(MATRIX))
def case(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, render(**MATRIX[request.param])


def test_case_is_valid_pytorchjob(case: tuple[str, dict[str, Any]]) -> None:
    _, job = case
    assert job["apiVersion"] == "kubeflow.org/v1"
    assert job["kind"] == "PyTorchJob"
    assert validate_job(job) == []


def test_case_pod_contract(case: tuple[str, dict[str, Any]]) -> None:
    """Every case keeps the pod layout of docs/CONTRACT.md and the restricted PSS."""
    _, job = case
    for role in job["spec"]["pytorchReplicaSpecs"]:
        spec = pod_spec(job, role)
        main = container(job, role)
        assert main["name"] == "pytorch"
        mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
        assert {"/data", "/runs", "/tmp", "/dev/shm"} <= set(mounts)
        security = main["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert env_of(job, role)["HOME"] == "/tmp"
        run_dir = main["args"][main["args"].index("--run_dir") + 1]
        assert run_dir == f"/runs/{job['metadata']['name']}"


def test_worker_count_and_absent_worker_spec() -> None:
    assert "Worker" not in render(workers=0)["spec"]["pytorchReplicaSpecs"]
    replicas = render(workers=3)["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1
    assert replicas["Worker"]["replicas"] == 3
    assert replicas["Worker"]["restartPolicy"] == "ExitCode"


def test_single_process_runs_image_entrypoint() -> None:
    job = render(workers=1)
    main = container(job, "Worker")
    assert "command" not in main
    assert main["args"][:5] == [
        "train",
        "--model_config",
        "res_small",
        "--dataset_configs_path",
        "synthetic_mixed",
    ]
    assert main["args"][5:11] == [
        "--data_root",
        "/data",
        "--run_dir",
        "/runs/res-small-synthetic-mixed",
        "--resume",
        "auto",
    ]
    assert job["spec"]["nprocPerNode"] == "1"


def test_nproc_per_node_uses_torchrun_and_leaves_pet_vars_to_operator() -> None:
    job = render(workers=3, gpusPerReplica=4, nprocPerNode=4)
    main = container(job)
    assert main["command"] == ["torchrun"]
    assert main["args"][:4] == ["-m", "trainer", "train", "--model_config"]
    assert job["spec"]["nprocPerNode"] == "4"
    env = env_of(job)
    assert not [name for name in env if name.startswith("PET_")]
    assert not {"MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK"} & set(env)
    assert env["OMP_NUM_THREADS"] == "1"  # 4 CPUs / 4 processes
    assert main["resources"]["limits"]["nvidia.com/gpu"] == 4


def test_gpu_limits_only_when_requested() -> None:
    assert "nvidia.com/gpu" not in container(render())["resources"]["limits"]
    worker = container(render(workers=2, gpusPerReplica=2), "Worker")
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 2


@pytest.mark.parametrize(
    ("cpu", "nproc", "expected"),
    [("4", 1, "4"), ("500m", 1, "1"), ("2500m", 1, "2"), (16, 4, "4"), ("3", 4, "1")],
)
def test_omp_threads_from_cpu_request(cpu: Any, nproc: int, expected: str) -> None:
    job = render(resources={"requests": {"cpu": cpu}}, nprocPerNode=nproc)
    assert env_of(job)["OMP_NUM_THREADS"] == expected


def test_omp_threads_unset_without_cpu_request() -> None:
    assert "OMP_NUM_THREADS" not in env_of(render(resources={"requests": {"cpu": ""}}))


def test_volumes_pvc_vs_emptydir() -> None:
    spec = pod_spec(render(**MATRIX["pvc"]))
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"] == {
        "claimName": "corejob-data",
        "readOnly": True,
    }
    assert volumes["runs"]["persistentVolumeClaim"] == {"claimName": "corejob-checkpoints"}
    mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
    assert mounts["data"]["subPath"] == "sessions" and mounts["data"]["readOnly"] is True
    assert mounts["runs"]["subPath"] == "team-a"
    # Derived arrays the read-only data volume lacks go to the shared checkpoints volume.
    args = spec["containers"][0]["args"]
    assert args[args.index("--derived_dir") + 1] == "/runs/.derived"
    empty = {v["name"]: v for v in pod_spec(render())["volumes"]}
    assert empty["data"] == {"name": "data", "emptyDir": {}}
    assert "--derived_dir" not in pod_spec(render())["containers"][0]["args"]
    assert empty["shm"]["emptyDir"]["medium"] == "Memory"


def test_shm_can_be_turned_off() -> None:
    spec = pod_spec(render(shm={"enabled": False}))
    assert "shm" not in {v["name"] for v in spec["volumes"]}
    assert "/dev/shm" not in {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}


def test_wandb_key_only_by_secret_reference() -> None:
    env = env_of(render(**MATRIX["wandb-secret"]))
    assert env["WANDB_MODE"] == "online"
    assert env["WANDB_ENTITY"] == "lab"
    assert env["WANDB_API_KEY"] == {"secretKeyRef": {"name": "corejob-wandb", "key": "api-key"}}
    default = env_of(render())  # offline on the checkpoints volume, no key needed
    assert default["WANDB_MODE"] == "offline" and default["WANDB_DIR"].startswith("/runs/")
    assert "WANDB_API_KEY" not in default
    disabled = env_of(render(wandb={"mode": "disabled"}))
    assert disabled["WANDB_MODE"] == "disabled"
    assert not {"WANDB_API_KEY", "WANDB_DIR", "WANDB_PROJECT"} & set(disabled)


def test_elastic_policy_and_torchrun() -> None:
    job = render(**MATRIX["elastic"])
    assert job["spec"]["elasticPolicy"] == {
        "minReplicas": 2,
        "maxReplicas": 4,
        "maxRestarts": 3,
        "rdzvBackend": "c10d",
    }
    assert container(job)["command"] == ["torchrun"]


def test_run_policy_and_restart_policy() -> None:
    job = render(**MATRIX["run-policy"])
    assert job["spec"]["runPolicy"] == {
        "cleanPodPolicy": "All",
        "backoffLimit": 3,
        "activeDeadlineSeconds": 3600,
        "suspend": True,
        "schedulingPolicy": {
            "queue": "q",
            "priorityClass": "p",
            "minAvailable": 2,
            "scheduleTimeoutSeconds": 60,
        },
    }
    assert job["spec"]["pytorchReplicaSpecs"]["Master"]["restartPolicy"] == "OnFailure"
    defaults = render()["spec"]["runPolicy"]
    assert defaults["cleanPodPolicy"] == "Running" and defaults["suspend"] is False


def test_trainer_values_become_typed_flags() -> None:
    args = container(render(**MATRIX["trainer-args"]))["args"]
    flags = dict(zip(args[1::2], args[2::2], strict=False))
    assert flags["--max_epochs"] == "5"
    assert flags["--batch_size"] == "32"
    assert float(flags["--learning_rate"]) == pytest.approx(0.0003)
    assert flags["--seed"] == "0"  # zero is a value, not "unset"
    assert flags["--steps_per_epoch"] == "1000000"  # not 1e+06
    assert flags["--precision"] == "bf16-mixed"
    assert args[-2:] == ["--weight_decay", "0.01"]
    assert "--max_epochs" not in container(render())["args"]


def test_labels_on_job_and_pods() -> None:
    job = render(**MATRIX["sweep"], workers=1)
    for labels in (
        job["metadata"]["labels"],
        job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["metadata"]["labels"],
        job["spec"]["pytorchReplicaSpecs"]["Worker"]["template"]["metadata"]["labels"],
    ):
        assert labels["corejob.dev/model"] == "res_small"
        assert labels["corejob.dev/dataset"] == "synthetic_mixed"
        assert labels["corejob.dev/sweep"] == "sweep-1"
        assert labels["corejob.dev/config-hash"] == "abc123"
        assert labels["app.kubernetes.io/name"] == "corejob"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "corejob-0.1.0"
    env = env_of(job)
    assert env["COREJOB_SWEEP"] == "sweep-1" and env["COREJOB_JOB_NAME"] == "res-small-abc123"
    assert "corejob.dev/sweep" not in render()["metadata"]["labels"]


def test_image_tag_digest_and_default() -> None:
    assert container(render())["image"] == "localhost/corejob-trainer:0.1.0"
    assert container(render(image={"tag": "dev"}))["image"] == "localhost/corejob-trainer:dev"
    digest = "sha256:" + "a" * 64
    pinned = container(render(image={"tag": "dev", "digest": digest}))["image"]
    assert pinned == f"localhost/corejob-trainer@{digest}"


def test_namespace_only_when_given(base_values: dict[str, Any]) -> None:
    from corejob.job.render import render_job

    assert "namespace" not in render_job(base_values)["metadata"]
    assert render_job(base_values, namespace="lab")["metadata"]["namespace"] == "lab"


def test_queue_name_labels_the_job_for_kueue_and_creates_it_suspended() -> None:
    queued = render(queueName="team-q")
    assert queued["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-q"
    assert queued["spec"]["runPolicy"]["suspend"] is True
    pods = queued["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["metadata"]["labels"]
    assert "kueue.x-k8s.io/queue-name" not in pods  # the job is queued, not its pods
    plain = render()
    assert "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]
    assert plain["spec"]["runPolicy"]["suspend"] is False
    assert render(runPolicy={"suspend": True})["spec"]["runPolicy"]["suspend"] is True
