"""Job names: DNS-1035, at most 50 characters, derived predictably or failing clearly."""

from __future__ import annotations

import pytest

from corejob.job.kubeflow import DNS1035_LABEL, MAX_JOB_NAME_LENGTH
from corejob.job.render import RenderError, render_job
from tests.chart.conftest import render, values


def test_derived_from_model_and_dataset() -> None:
    assert render()["metadata"]["name"] == "res-small-synthetic-mixed"


def test_derived_from_config_paths() -> None:
    job = render(model="/configs/My_Model.v2.yaml", dataset="/data/configs/Set.yml")
    assert job["metadata"]["name"] == "my-model-v2-set"
    assert job["metadata"]["labels"]["corejob.dev/model"] == "My_Model.v2"


def test_release_name_wins_over_model_and_dataset() -> None:
    assert render_job(values(), release_name="exp42")["metadata"]["name"] == "exp42"


def test_explicit_job_name_wins() -> None:
    job = render_job(values(jobName="my-run"), release_name="exp42")
    assert job["metadata"]["name"] == "my-run"


def test_too_long_derived_name_fails() -> None:
    with pytest.raises(RenderError) as error:
        render(model="res_small_concat_gru", dataset="synthetic_realistic_with_long_suffix")
    message = str(error.value)
    assert "is 57 characters, at most 50" in message
    assert "set a shorter jobName" in message


def test_release_name_not_dns1035_fails() -> None:
    with pytest.raises(RenderError, match=r"job name \"1st-run\" \(from the release name\)"):
        render_job(values(), release_name="1st-run")


def test_fifty_characters_is_accepted() -> None:
    name = "a" * 50
    assert render(jobName=name)["metadata"]["name"] == name


def test_a_config_hash_ends_the_derived_name_within_50_characters() -> None:
    digest = "0123456789"
    job = render(model="res_small_concat_gru" * 3, dataset="synthetic_realistic", configHash=digest)
    name = job["metadata"]["name"]
    assert name.startswith("res-small-concat-gru") and name.endswith(f"-{digest}")
    assert len(name) == MAX_JOB_NAME_LENGTH and DNS1035_LABEL.match(name)
    assert render(configHash=digest)["metadata"]["name"] == f"res-small-synthetic-mixed-{digest}"


def test_derived_names_start_with_a_letter_and_have_no_double_dashes() -> None:
    job = render(model="3d_net", dataset="set__b", configHash="abc")
    assert job["metadata"]["name"] == "j-3d-net-set-b-abc"


def test_the_chart_limit_is_the_one_validation_checks() -> None:
    """The chart builds names, validation checks them: both use the same limit."""
    assert render(jobName="a" * MAX_JOB_NAME_LENGTH)["metadata"]["name"]
    with pytest.raises(RenderError, match=f"want {MAX_JOB_NAME_LENGTH}"):  # the values schema
        render(jobName="a" * (MAX_JOB_NAME_LENGTH + 1))
    with pytest.raises(RenderError, match=f"at most {MAX_JOB_NAME_LENGTH} are allowed"):
        render_job(values(), release_name="r" * (MAX_JOB_NAME_LENGTH + 1))
