"""Small things users expect (issue 16, item 6): defaults in ``--help``, ``corejob list``,
``logs --tail`` on a cluster, and a ``KUBECONFIG`` typo reported instead of worked around."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from corejob.errors import ExitCode
from tests.corejob.test_cli_track import submit

BUNDLED_MODELS = {  # each the first sentence of its config's leading comment, whole
    "cpu_dense_film_none_gaussian": "VisionCore-style DenseNet + FiLM "
    "(learned_dense_film_none_gaussian), sized for CPU.",
    "cpu_resnet_concat_convgru_gaussian": "VisionCore-style ResNet + concat + ConvGRU "
    "(learned_resnet_concat_convgru_gaussian), CPU-sized.",
    "cpu_resnet_none_none_gaussian": "VisionCore-style ResNet (learned_resnet_none_none_gaussian), "
    "sized for CPU.",
    "modulator_only_gru": "Behaviour-only baseline: no vision core.",
    "res_small": "ResNet core, no recurrence, Gaussian readout, log-rate output.",
    "res_small_concat_gru": "res_small_gru plus behaviour: an embedding of the behaviour "
    "covariates (eye position, saccade state) is appended as extra channels before the ConvGRU.",
    "res_small_gru": "ResNet core + ConvGRU over time: the frontend's short temporal filters leave"
    " (lags - kernel_size + 1) time steps, which the GRU integrates; the readout reads its final"
    " state with a Gaussian readout.",
    "r3d_small": "Video family (trainer/video): a CPU-sized ResNet3D shared by every camera view,"
    " mean fusion over views (view-order invariant), one linear head per task sized by the"
    " task's vocabulary.",
    "r3d_18": "Video family: r3d-18 layout (3x7x7 stem with spatial stride 2, four stages of two"
    " basic blocks, 64-128-256-512 channels, batch norm), shared across views; attention fusion.",
}


def help_text(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    from corejob.cli import main

    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrapped: one line


def test_sweep_help_shows_the_defaults(capsys) -> None:
    text = help_text(capsys, ["sweep", "--help"])
    assert "--max-parallel MAX_PARALLEL jobs running at once (default: 2)" in text
    assert "retries of retryable failures (default: 1)" in text
    assert "--runs-dir RUNS_DIR local backends' run directory (default: runs)" in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: [])" not in text and "--poll" not in text  # hidden stays hidden


def test_list_models_names_and_describes_every_bundled_model(corejob) -> None:
    result = corejob("list", "models")
    assert result.code == 0, result.err
    header, *rows = result.out.splitlines()
    assert header.split() == ["MODEL", "DESCRIPTION"]
    described = {row.split(maxsplit=1)[0]: row.split(maxsplit=1)[1] for row in rows}
    assert described == BUNDLED_MODELS


def test_list_datasets_json_reads_the_description_field(corejob) -> None:
    result = corejob("list", "datasets", "-o", "json")
    assert result.code == 0, result.err
    entries = {entry["name"]: entry["description"] for entry in json.loads(result.out)}
    assert sorted(entries) == [
        "synthetic_backimage",
        "synthetic_gaborium",
        "synthetic_mixed",
        "synthetic_realistic",
        "synthetic_tiny",
        "synthetic_views",
        "synthetic_views_tiny",
    ]
    assert entries["synthetic_gaborium"] == (
        "Three synthetic gaborium sessions (sparse random Gabor frames)."
    )
    assert entries["synthetic_mixed"] == (  # a folded block scalar becomes one line
        "Default synthetic dataset - four sessions of ground-truth LN-Poisson V1 units "
        "(backimage, gaborium, gratings) with different unit counts, one with only a few units."
    )


def test_describe_falls_back_to_the_leading_comment_then_nothing(tmp_path: Path) -> None:
    from corejob.catalog import describe

    (tmp_path / "commented.yaml").write_text("\n#\n# What it is.\n# More.\nkey: 1  # a field\n")
    (tmp_path / "bare.yaml").write_text("key: 1\n# a later comment\n")
    (tmp_path / "both.yaml").write_text("# comment\ndescription: the field wins\n")
    assert describe(tmp_path / "commented.yaml") == "What it is."
    assert describe(tmp_path / "bare.yaml") == ""
    assert describe(tmp_path / "both.yaml") == "the field wins"


def test_a_description_is_the_first_sentence_not_the_first_line(corejob) -> None:
    result = corejob("list", "models", "-o", "json")
    entries = {entry["name"]: entry["description"] for entry in json.loads(result.out)}
    assert entries["modulator_only_gru"] == (
        "Behaviour-only baseline: no vision core."
    )  # its comment's first line stops at "... The behaviour embedding becomes a 1x1"
    assert all(text.endswith((".", ")")) or not text for text in entries.values()), entries


def test_logs_tail_on_a_cluster(cluster, corejob) -> None:
    name = submit(corejob, "synthetic_tiny", "--workers", "1")
    master = cluster.operator.add_pod(name, "master", 0, logs=["m0", "m1", "m2"])
    cluster.operator.add_pod(name, "worker", 0, logs=["w0", "w1"])
    cluster.operator.log(master, "m3")

    assert corejob("logs", name, "--tail", "2").out.splitlines() == ["m2", "m3"]
    assert corejob("logs", name, "--replica", "worker-0", "--tail", "1").out.split() == ["w1"]
    every = corejob("logs", name, "--all", "--tail", "1").out.splitlines()
    assert sorted(every) == ["[rank 0 master-0] m3", "[rank 1 worker-0] w1"]


@pytest.mark.parametrize("backend", [[], ["--backend", "kubernetes"]])
def test_a_kubeconfig_naming_a_missing_file_is_an_error_naming_it(
    tmp_path, monkeypatch, corejob, backend
) -> None:
    missing = tmp_path / "typo" / "config"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    monkeypatch.chdir(tmp_path)
    result = corejob("status", *backend)
    assert result.code == ExitCode.NO_CLUSTER
    assert len(result.err.splitlines()) == 1
    assert f"KUBECONFIG names a missing file: {missing}" in result.err
    assert "local backend" not in result.err  # no silent fallback
    assert not (tmp_path / "runs").exists()


def test_a_missing_file_beside_a_usable_one_is_tolerated_as_kubectl_does(
    cluster, tmp_path, monkeypatch, corejob
) -> None:
    paths = os.pathsep.join([str(tmp_path / "gone"), str(cluster.kubeconfig)])
    monkeypatch.setenv("KUBECONFIG", paths)
    result = corejob("status")
    assert result.code == 0, result.err
    assert result.out.strip() == "no jobs"


def test_a_bare_cluster_submit_warns_about_its_image_and_emptydir(cluster, corejob) -> None:
    """What a new user sees on a cluster without site defaults (then, with them: nothing)."""
    bare = corejob("submit", "-m", "res_small", "-d", "synthetic_tiny")
    assert bare.code == 0, bare.err
    warnings = [line for line in bare.err.splitlines() if "warning" in line]
    assert any("image localhost/corejob-trainer:" in w and "cannot pull it" in w
               for w in warnings), bare.err  # fmt: skip
    assert any("/runs is an emptyDir" in w and "checkpoints.existingClaim" in w
               for w in warnings), bare.err  # fmt: skip
    site = Path("site.yaml")  # the test runs in its tmp_path
    site.write_text("image: {repository: ghcr.io/lab/trainer}\n"
                    "checkpoints: {existingClaim: lab-runs}\n")  # fmt: skip
    configured = corejob("submit", "-f", str(site), "-m", "res_small", "-d", "synthetic_mixed")
    assert configured.code == 0, configured.err
    assert "warning" not in configured.err, configured.err
