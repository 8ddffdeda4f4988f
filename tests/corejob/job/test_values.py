"""Chart values in Helm's dialect: -f files, --set-json, --set, --set-string, Helm's order."""

from __future__ import annotations

from pathlib import Path

import pytest

from corejob.errors import UsageError
from corejob.job.spec import JobRequest, chart_values, image_values
from corejob.job.values import ValueSources, values_from_sources


def test_set_follows_helm_typing_lists_ints_bools_and_strings() -> None:
    values = values_from_sources(
        ValueSources(
            set=(
                "trainer.extraArgs={--seed,3},trainer.maxEpochs=5,shm.enabled=false",
                "trainer.learningRate=3e-4",
            )
        )
    )
    assert values["trainer"] == {"extraArgs": ["--seed", 3], "maxEpochs": 5, "learningRate": "3e-4"}
    assert values["shm"] == {"enabled": False}


def test_set_string_keeps_strings_and_set_json_takes_documents() -> None:
    values = values_from_sources(
        ValueSources(set_json=('trainer.extraArgs=["--seed","3"]',), set_string=("seed=3",))
    )
    assert values == {"trainer": {"extraArgs": ["--seed", "3"]}, "seed": "3"}


def test_later_sources_win_in_helms_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("workers: 1\ntrainer: {maxEpochs: 2, seed: 1}\n")
    second.write_text("trainer: {maxEpochs: 3}\n")
    sources = ValueSources(files=(str(first), str(second)), set_json=("workers=4",),
                           set=("workers=5",), set_string=("sweep=5",))  # fmt: skip
    values = values_from_sources(sources)
    assert values == {"workers": 5, "trainer": {"maxEpochs": 3, "seed": 1}, "sweep": "5"}


@pytest.mark.parametrize(
    ("sources", "message"),
    [
        (ValueSources(set=("trainer.maxEpochs",)), "invalid --set 'trainer.maxEpochs': key"),
        (ValueSources(set=("a={1,2",)), "invalid --set 'a={1,2': list must terminate"),
        (ValueSources(set_json=("a={bad",)), "invalid --set-json 'a={bad'"),
        (ValueSources(files=("/nonexistent/v.yaml",)), "-f /nonexistent/v.yaml: cannot read"),
    ],
)
def test_bad_values_are_one_line_usage_errors(sources: ValueSources, message: str) -> None:
    with pytest.raises(UsageError) as error:
        values_from_sources(sources)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_values_file_with_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("trainer:\n  maxEpochs: [1\n")
    with pytest.raises(UsageError, match=rf"-f {path}: line \d+: invalid YAML"):
        values_from_sources(ValueSources(files=(str(path),)))
    path.write_text("- a list\n")
    with pytest.raises(UsageError, match="expected a mapping of chart values, got list"):
        values_from_sources(ValueSources(files=(str(path),)))


def test_explicit_flags_win_over_values_and_the_default_image_is_local() -> None:
    given = {"workers": 7, "model": "other", "trainer": {"seed": 1}}
    request = JobRequest("res_small", "synthetic_tiny", workers=2, values=given)
    values = chart_values(request)
    assert (values["workers"], values["model"], values["trainer"]) == (2, "res_small", {"seed": 1})
    assert values["image"]["repository"] == "localhost/corejob-trainer"
    with_image = chart_values(JobRequest("m", "d", image="ghcr.io/lab/t", values=values))
    assert with_image["image"] == {"repository": "ghcr.io/lab/t", "tag": ""}


def test_image_references_split_into_chart_values() -> None:
    assert image_values("ghcr.io/lab/trainer:1.2") == {"repository": "ghcr.io/lab/trainer",
                                                       "tag": "1.2"}  # fmt: skip
    assert image_values("localhost:5000/t") == {"repository": "localhost:5000/t", "tag": ""}
    assert image_values("r/t@sha256:ab")["digest"] == "sha256:ab"


def test_site_defaults_are_found_like_kubectls_config(tmp_path: Path) -> None:
    from corejob.job.values import default_value_files

    home, project = tmp_path / "home", tmp_path / "project"
    user_file = home / ".config" / "corejob" / "values.yaml"
    project_file = project / ".corejob" / "values.yaml"
    assert default_value_files({"HOME": str(home)}, project) == ()
    for path in (user_file, project_file):
        path.parent.mkdir(parents=True)
        path.write_text("workers: 1\n")
    # user first, project second: the more specific file wins, the command line beats both
    assert default_value_files({"HOME": str(home)}, project) == (str(user_file), str(project_file))
    xdg = tmp_path / "xdg" / "corejob" / "values.yaml"
    xdg.parent.mkdir(parents=True)
    xdg.write_text("workers: 2\n")
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert default_value_files(env, project)[0] == str(xdg)
    listed = {"COREJOB_VALUES": f"{project_file}:{user_file}", "HOME": str(home)}
    assert default_value_files(listed, project) == (str(project_file), str(user_file))
    assert default_value_files({"COREJOB_VALUES": ""}, project) == ()


def test_cluster_warnings_name_a_local_only_image_and_checkpoints_in_an_emptydir() -> None:
    from corejob.job.spec import build_job, lint_job

    local = build_job(JobRequest("res_small", "synthetic_tiny"), None)
    _, warnings = lint_job(local, None, on_cluster=True)
    assert any("exists only on this machine" in w for w in warnings)
    assert any("/runs is an emptyDir" in w for w in warnings) and len(warnings) == 2
    assert lint_job(local, None, on_cluster=False) == ([], [])
    site = {"image": {"repository": "ghcr.io/lab/t"}, "checkpoints": {"existingClaim": "ckpt"}}
    ready = build_job(JobRequest("res_small", "synthetic_tiny", values=site), None)
    assert lint_job(ready, None, on_cluster=True) == ([], [])
