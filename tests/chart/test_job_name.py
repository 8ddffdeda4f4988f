"""Job names: DNS-1035, at most 50 characters, derived predictably or failing clearly."""

from __future__ import annotations

import pytest

from corejob.render import RenderError, render_job
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
