"""One renderer: `make render` and `corejob render` print the same bytes for the same inputs."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from corejob.job.validation import validate_job

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/tmp", "KUBECONFIG": "/nonexistent"}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, env=env)


def make_render(*assignments: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make, "make is needed for the Makefile targets"
    # STAMP= : the venv running this test is the one to use, not (re)installed by make.
    return run([make, "-s", "render", "STAMP=", f"BIN={BIN}", *assignments])


def corejob_render(*args: str) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "corejob"), "render", *args])


@pytest.mark.parametrize(
    ("make_args", "cli_args"),
    [
        (["MODEL=res_small", "WORKERS=3"],
         ["--model", "res_small", "--dataset", "synthetic_mixed", "--workers", "3", "--gpus", "0"]),
        (["MODEL=res_small_gru", "DATASET=synthetic_tiny", "GPUS=1", "IMAGE=ghcr.io/lab/t:2",
          "SET=trainer.extraArgs={--seed,3} trainer.learningRate=3e-4", "NPROC=2"],
         ["-m", "res_small_gru", "-d", "synthetic_tiny", "--workers", "1", "--gpus", "1",
          "--image", "ghcr.io/lab/t:2", "--set", "trainer.extraArgs={--seed,3}",
          "--set", "trainer.learningRate=3e-4", "--set", "nprocPerNode=2"]),
    ],
)  # fmt: skip
def test_make_render_and_corejob_render_are_byte_identical(make_args, cli_args) -> None:
    from_make, from_cli = make_render(*make_args), corejob_render(*cli_args)
    assert from_make.returncode == 0, from_make.stderr
    assert from_cli.returncode == 0, from_cli.stderr
    assert from_make.stdout == from_cli.stdout
    job = yaml.safe_load(from_cli.stdout)
    assert validate_job(job) == []
    assert job["metadata"]["labels"]["corejob.dev/config-hash"]


def test_values_files_and_helm_lists_render_through_make_too(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("trainer:\n  maxEpochs: 4\n")
    result = make_render("MODEL=res_small", f"VALUES={values}", "SET=trainer.extraArgs={--seed,3}")
    assert result.returncode == 0, result.stderr
    args = yaml.safe_load(result.stdout)["spec"]["pytorchReplicaSpecs"]["Master"]["template"][
        "spec"
    ]["containers"][0]["args"]
    assert args[args.index("--max_epochs") + 1] == "4" and args[-2:] == ["--seed", "3"]


def test_bad_values_are_one_line_with_exit_2() -> None:
    result = corejob_render("-m", "res_small", "--set", "workers=-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "corejob: error: cannot render the job: invalid chart values: at '/workers': "
        "minimum: got -1, want 0"
    ]


def test_site_defaults_apply_and_the_command_line_wins(tmp_path: Path) -> None:
    site = tmp_path / "site.yaml"
    site.write_text("image: {repository: ghcr.io/lab/trainer}\ntrainer: {maxEpochs: 7}\n")
    env_run = subprocess.run(
        [str(BIN / "corejob"), "render", "-m", "res_small", "--set", "trainer.maxEpochs=3"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": "/nonexistent",
             "COREJOB_VALUES": str(site)},
    )  # fmt: skip
    assert env_run.returncode == 0, env_run.stderr
    job = yaml.safe_load(env_run.stdout)
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("ghcr.io/lab/trainer:")
    assert container["args"][container["args"].index("--max_epochs") + 1] == "3"


def test_make_submit_takes_a_site_values_file(tmp_path: Path) -> None:
    """`make submit VALUES=site.yaml` is `corejob submit -f site.yaml`: the lab's image,
    claims and limits once in a file, not as --set on every submit."""
    site = tmp_path / "site.yaml"
    site.write_text("image: {repository: ghcr.io/lab/trainer}\ntrainer: {maxEpochs: 7}\n")
    make = shutil.which("make")
    assert make
    done = run([make, "-s", "submit", "STAMP=", f"BIN={BIN}", "BACKEND=local", "DRY_RUN=1",
                "DATASET=synthetic_tiny", f"VALUES={site}"])  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = next(d for d in yaml.safe_load_all(done.stdout) if d and d.get("kind") == "PyTorchJob")
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("ghcr.io/lab/trainer:")
    assert container["args"][container["args"].index("--max_epochs") + 1] == "7"


def test_user_and_project_defaults_files_are_found_like_kubectl_finds_its_config(
    tmp_path: Path,
) -> None:
    """No flag, no variable: ``~/.config/corejob/values.yaml`` then the project's
    ``.corejob/values.yaml`` (later wins), below the command line."""
    home, project = tmp_path / "home", tmp_path / "project"
    (home / ".config" / "corejob").mkdir(parents=True)
    (home / ".config" / "corejob" / "values.yaml").write_text(
        "image: {repository: ghcr.io/me/trainer}\ntrainer: {maxEpochs: 7}\n"
    )
    (project / ".corejob").mkdir(parents=True)
    (project / ".corejob" / "values.yaml").write_text("trainer: {maxEpochs: 9}\n")
    done = subprocess.run(
        [str(BIN / "corejob"), "render", "-m", "res_small"],
        cwd=project, capture_output=True, text=True, timeout=120,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(home), "KUBECONFIG": "/nonexistent"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job = yaml.safe_load(done.stdout)
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("ghcr.io/me/trainer:")
    assert container["args"][container["args"].index("--max_epochs") + 1] == "9"
