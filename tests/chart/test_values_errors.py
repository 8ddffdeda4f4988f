"""Bad values fail the render with one line naming the value, never a broken job."""

from __future__ import annotations

from typing import Any

import pytest

from corejob.job.render import RenderError, render_job
from tests.chart.conftest import render, values


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"workers": -1}, "at '/workers': minimum: got -1, want 0"),
        ({"workers": "3"}, "at '/workers': got string, want integer"),
        ({"gpusPerReplica": 1.5}, "at '/gpusPerReplica': got number, want integer"),
        ({"nprocPerNode": 0}, "at '/nprocPerNode': minimum: got 0, want 1"),
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"trainer": {"max_epochs": 3}}, "at '/trainer': additional properties 'max_epochs'"),
        ({"trainer": {"maxEpochs": "ten"}}, "at '/trainer/maxEpochs': got string"),
        ({"jobName": "Res_Small"}, "at '/jobName': 'Res_Small' does not match pattern"),
        ({"jobName": "a" * 51}, "at '/jobName': maxLength: got 51, want 50"),
        ({"restartPolicy": "Sometimes"}, "at '/restartPolicy'"),
        ({"runPolicy": {"cleanPodPolicy": "Some"}}, "at '/runPolicy/cleanPodPolicy'"),
        ({"wandb": {"mode": "on"}}, "at '/wandb/mode'"),
        ({"wandb": {"apiKey": "secret"}}, "additional properties 'apiKey' not allowed"),
        ({"image": {"digest": "sha256:abc"}}, "at '/image/digest'"),
        ({"resources": {"requests": {"memory": "lots"}}}, "at '/resources/requests/memory'"),
        ({"resources": {"requests": {"gpu": 1}}}, "additional properties 'gpu' not allowed"),
        ({"model": "res small"}, "at '/model'"),
        ({"queueName": "Team_Q"}, "at '/queueName': 'Team_Q' does not match pattern"),
    ],
)
def test_schema_rejects(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError) as error:
        render(**overrides)
    text = str(error.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith("invalid chart values:")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model": ""}, "model is required"),
        ({"dataset": ""}, "dataset is required"),
        ({"image": {"repository": ""}}, "image.repository is required"),
        ({"wandb": {"mode": "online"}}, "wandb.mode=online needs wandb.apiKeySecret.name"),
        (
            {"workers": 0, "elasticPolicy": {"enabled": True}},
            "elasticPolicy.enabled needs workers >= 1",
        ),
        (
            {"workers": 3, "elasticPolicy": {"enabled": True, "minReplicas": 5}},
            "minReplicas (5) <= workers + 1 (4) <= maxReplicas (4) must hold",
        ),
    ],
)
def test_template_failures_are_clear(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RenderError) as error:
        render(**overrides)
    assert message in str(error.value)
    assert "execution error" not in str(error.value)


def test_unserializable_values_are_a_render_error() -> None:
    with pytest.raises(RenderError, match="not JSON-serializable"):
        render_job(values(model=object()))


def test_missing_chart_names_the_override(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("COREJOB_CHART_DIR", str(tmp_path))
    with pytest.raises(RenderError, match="COREJOB_CHART_DIR"):
        render()


def test_all_schema_violations_in_one_line() -> None:
    with pytest.raises(RenderError) as error:
        render(workers=-1, nprocPerNode=0)
    assert str(error.value).count("; at '/") == 1


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("localhost/corejob-trainer", {"repository": "localhost/corejob-trainer"}),
        ("localhost:5000/t:1.2", {"repository": "localhost:5000/t", "tag": "1.2"}),
        ("r/t@sha256:" + "0" * 64, {"repository": "r/t", "digest": "sha256:" + "0" * 64}),
    ],
)
def test_image_reference_to_values(reference: str, expected: dict[str, str]) -> None:
    from corejob.job.values import image_values

    assert image_values(reference) == expected
