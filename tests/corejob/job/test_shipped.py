"""Config files from the user's machine become part of the job: its ConfigMap, its mount,
its trainer arguments and its identity (corejob/job/shipped/)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from corejob.cli import main
from corejob.errors import UsageError
from corejob.job.flavors.replicas import node_patch
from corejob.job.flavors.trainjob_rules import carried_runtime
from corejob.job.shipped.owned import owned_objects
from corejob.job.spec import JobRequest, build_job
from corejob.job.validation import validate_job
from trainer.configs import CONFIGS_DIR

MODEL_TEXT = (CONFIGS_DIR / "models" / "res_small.yaml").read_text()
_TINY = CONFIGS_DIR / "datasets" / "synthetic_tiny"


def tiny_as(stem: str) -> dict[str, str]:
    """synthetic_tiny's files (a valid dataset config: the schema passes) named ``stem``."""
    files = {f"{stem}.yaml": _TINY.with_suffix(".yaml").read_text()}
    files.update({f"{stem}/{p.name}": p.read_text() for p in _TINY.glob("*.yaml")})
    return files


def write(path: Path, text: str = MODEL_TEXT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def job_for(model: Path | str, dataset: str = "synthetic_tiny") -> dict:
    return build_job(JobRequest(str(model), dataset, workers=0), "lab")


def test_the_job_owns_a_configmap_with_the_file_and_reads_it_from_the_mount(tmp_path: Path):
    job = job_for(write(tmp_path / "my_model.yaml"))
    name = job["metadata"]["name"]
    (config_map,) = owned_objects(job)
    assert config_map["metadata"]["name"] == f"{name}-configs"
    assert config_map["metadata"]["namespace"] == "lab"
    assert config_map["data"] == {"my_model.yaml": MODEL_TEXT}
    kubernetes_validate.validate(config_map, "1.35.0", strict=True)
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--model_config") + 1] == "/etc/corejob/configs/my_model.yaml"
    assert args[args.index("--dataset_configs_path") + 1] == "synthetic_tiny"  # a name stays
    assert job["metadata"]["labels"]["corejob.dev/model"] == "my_model"


def test_the_content_is_the_identity_not_the_directory(tmp_path: Path):
    first = job_for(write(tmp_path / "a" / "my_model.yaml"))["metadata"]["name"]
    same = job_for(write(tmp_path / "b" / "my_model.yaml"))["metadata"]["name"]
    edited = job_for(write(tmp_path / "a" / "my_model.yaml", MODEL_TEXT + "# tuned\n"))
    assert first == same
    assert edited["metadata"]["name"] != first


def test_bundled_names_ship_nothing():
    job = job_for("res_small")
    assert owned_objects(job) == ()
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    assert "configs" not in {volume["name"] for volume in pod["volumes"]}
    assert "annotations" not in job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["metadata"]


@pytest.mark.parametrize(
    ("files", "model", "dataset", "message"),
    [
        ({}, "nope/my_model.yaml", "synthetic_tiny", "nope/my_model.yaml"),
        ({"my model.yaml": MODEL_TEXT}, "my model.yaml", "synthetic_tiny", "a ConfigMap key"),
        ({"m/c.yaml": MODEL_TEXT, **tiny_as("d/c")}, "m/c.yaml", "d/c.yaml", "name 'c.yaml'"),
        ({"big.yaml": MODEL_TEXT + "#" * (1024 * 1024)}, "big.yaml", "synthetic_tiny",
         "at most 1048576"),
    ],
    ids=["missing", "bad-key", "clash", "too-big"],
)  # fmt: skip
def test_a_file_that_cannot_be_shipped_is_one_line_naming_it(
    tmp_path, monkeypatch, files, model, dataset, message
):
    monkeypatch.chdir(tmp_path)
    for path, text in files.items():
        write(tmp_path / path, text)
    with pytest.raises(UsageError, match=message) as caught:
        job_for(model, dataset)
    assert "\n" not in str(caught.value)


def test_render_and_dry_run_print_the_job_then_its_configmap(tmp_path, capsys):
    model = str(write(tmp_path / "my_model.yaml"))
    printed = []
    for command in ("render", "submit"):
        extra = ["--dry-run"] if command == "submit" else []
        code = main([command, "-m", model, "-d", "synthetic_tiny", "--backend", "local", *extra])
        assert code == 0
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1]
    job, config_map = yaml.safe_load_all(printed[0])
    assert (job["kind"], config_map["kind"]) == ("PyTorchJob", "ConfigMap")
    assert config_map["data"]["my_model.yaml"] == MODEL_TEXT


def own_dataset(directory: Path) -> Path:
    """synthetic_tiny as a user's own dataset: my_data.yaml and its sessions in my_data/."""
    bundled = CONFIGS_DIR / "datasets"
    for session in (bundled / "synthetic_tiny").glob("*.yaml"):
        write(directory / "my_data" / session.name, session.read_text())
    return write(directory / "my_data.yaml", (bundled / "synthetic_tiny.yaml").read_text())


def test_a_dataset_config_brings_its_session_files_to_their_paths(tmp_path: Path):
    job = job_for("res_small", str(own_dataset(tmp_path)))
    (config_map,) = owned_objects(job)
    assert sorted(config_map["data"]) == [
        "my_data--tiny_back.yaml", "my_data--tiny_gabor.yaml", "my_data.yaml"
    ]  # fmt: skip
    pod = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "configs"]
    assert {"key": "my_data--tiny_back.yaml", "path": "my_data/tiny_back.yaml"} in (
        volume["configMap"]["items"]
    )
    args = pod["containers"][0]["args"]
    assert args[args.index("--dataset_configs_path") + 1] == "/etc/corejob/configs/my_data.yaml"


def test_session_files_outside_the_datasets_directory_are_refused(tmp_path: Path):
    dataset = own_dataset(tmp_path / "mine")
    dataset.write_text(dataset.read_text() + "session_dir: ../elsewhere\n")
    for session in (tmp_path / "mine" / "my_data").iterdir():  # there, but cannot be shipped
        write(tmp_path / "elsewhere" / session.name, session.read_text())
    with pytest.raises(UsageError, match=r"session_dir '\.\./elsewhere' is outside"):
        job_for("res_small", str(dataset))


def test_a_trainjob_ships_the_file_the_same_way(tmp_path: Path):
    """Kubeflow Trainer v2: the ConfigMap is the TrainJob's too, and the mount reaches the
    node pods through the runtime patch and the job's own TrainingRuntime alike."""
    flavor = {"apiFlavor": "trainjob", "trainJob": {"runtime": {"create": True}}}
    request = JobRequest(str(write(tmp_path / "my_model.yaml")), "synthetic_tiny", 0, values=flavor)
    job = build_job(request, "lab")
    name = job["metadata"]["name"]
    assert validate_job(job) == []
    (config_map,) = owned_objects(job)
    assert (config_map["metadata"]["name"], config_map["data"]) == (
        f"{name}-configs", {"my_model.yaml": MODEL_TEXT}
    )  # fmt: skip
    args = job["spec"]["trainer"]["args"]
    assert args[args.index("--model_config") + 1] == "/etc/corejob/configs/my_model.yaml"
    volume = {"name": "configs", "configMap": {"name": f"{name}-configs",
              "items": [{"key": "my_model.yaml", "path": "my_model.yaml"}]}}  # fmt: skip
    mount = {"name": "configs", "mountPath": "/etc/corejob/configs", "readOnly": True}
    runtime = carried_runtime(job)
    for pod in (node_patch(job), runtime["spec"]["template"]["spec"]["replicatedJobs"][0]
                ["template"]["spec"]["template"]):  # fmt: skip
        assert volume in pod["spec"]["volumes"]
        (container,) = pod["spec"]["containers"]
        assert mount in container["volumeMounts"]
        assert "corejob.dev/config-files-sha256" in pod["metadata"]["annotations"]
