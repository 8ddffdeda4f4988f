"""The run's result object: ``metrics.json``, ``history.json`` and the result line.

The controller reads the result from the master pod's log (it may have no access to the
run volume), so rank 0 prints exactly one line ``COREJOB_RESULT {json}`` at the very end.
This module is both sides of that clause: the trainer writes the line with
:func:`result_line`, every controller backend reads it with :func:`parse_result_line`.
Nothing here imports torch or Lightning, so the controller can import it.

The ledger record (:func:`result_record`) is the result with its job's identity and final
state; the trainer writes it into the run directory at the end of every attempt (also a
failed one), the controller's ledgers keep the same shape, so a result outlives its job.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

RESULT_LINE_PREFIX = "COREJOB_RESULT "
# The run's ledger record (:func:`result_record`), written by rank 0 into its run directory
# next to ``checkpoints/`` (on a cluster: the checkpoints claim, so it outlives the job).
RESULT_RECORD_FILE = "result.json"
# The chart's labels a record carries (corejob/job/state.py reads them from here).
LABEL_MODEL = "corejob.dev/model"
LABEL_DATASET = "corejob.dev/dataset"
LABEL_SWEEP = "corejob.dev/sweep"
# The identity a record keeps of its job: enough to list, select and order it after the
# job object is gone (``corejob results --sweep``), nothing that only a live job needs.
RECORD_METADATA = ("name", "namespace", "uid", "labels", "creationTimestamp")
OVERALL_KEY = "val_bps_overall"
SESSION_KEY_PREFIX = "val_bps/"
# Added to a result by the backend that ran it when its processes outnumbered the cores
# (each step slower, a time budget buys fewer steps): the number is not comparable.
CPU_OVERSUBSCRIBED = "cpu_oversubscribed"
# Every result names its family's headline metric: ``metric`` (the history key),
# ``metric_label`` (what tables print), ``best_metric``/``final_metric``, and where the
# data is synthetic ``optimum`` (the ground truth's score) and ``optimum_ratio`` (final /
# optimum). The V1 family keeps its bits/spike fields beside them.
V1_LABEL = "val bits/spike"
CLASSIFICATION_KEY = "val_macro_acc"
CLASSIFICATION_LABEL = "val macro accuracy"


def finite_or_none(value: Any) -> float | None:
    """JSON has no NaN: missing or non-finite numbers become ``null``."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _session_bps(record: Mapping[str, Any], sessions: Sequence[str]) -> dict[str, float | None]:
    return {name: finite_or_none(record.get(SESSION_KEY_PREFIX + name)) for name in sessions}


def _best_record(
    history: Sequence[Mapping[str, Any]], key: str = OVERALL_KEY
) -> Mapping[str, Any] | None:
    scored = [r for r in history if finite_or_none(r.get(key)) is not None]
    return max(scored, key=lambda r: r[key]) if scored else None


def metric_fields(
    history: Sequence[Mapping[str, Any]],
    key: str,
    label: str,
    family: str,
    optimum: float | None = None,
) -> dict[str, Any]:
    """The family-independent headline: best/final of ``key`` (higher is better)."""
    final = history[-1] if history else {}
    best = _best_record(history, key)
    final_value = finite_or_none(final.get(key))
    optimum = finite_or_none(optimum)
    return {
        "family": family,
        "metric": key,
        "metric_label": label,
        "best_metric": finite_or_none(best[key]) if best else None,
        "final_metric": final_value,
        "best_epoch": int(best["epoch"]) + 1 if best else None,
        "epochs": int(final["epoch"]) + 1 if final else 0,
        "optimum": optimum,
        "optimum_ratio": final_value / optimum if final_value is not None and optimum else None,
    }


def _oracle_fields(
    oracle: Mapping[str, float] | None, val_bps: Mapping[str, float | None]
) -> dict[str, Any]:
    """Oracle bits/spike per session and how much of it the model reaches (model/oracle)."""
    if not oracle:
        return {}
    ratio = {
        name: (val / oracle[name] if val is not None and oracle.get(name) else None)
        for name, val in val_bps.items()
    }
    oracle_mean = sum(oracle.values()) / len(oracle)
    known = [v for v in val_bps.values() if v is not None]
    model_mean = sum(known) / len(known) if len(known) == len(val_bps) and known else None
    return {
        "oracle_bps": {k: finite_or_none(v) for k, v in oracle.items()},
        "oracle_bps_overall": finite_or_none(oracle_mean),
        "oracle_ratio": ratio,
        "oracle_ratio_overall": finite_or_none(model_mean / oracle_mean)
        if model_mean is not None and oracle_mean
        else None,
    }


def build_result(
    *,
    history: Sequence[Mapping[str, Any]],
    sessions: Sequence[str],
    run: Mapping[str, Any],
    oracle: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The result object (pure): best and final bits/spike from the per-epoch history.

    ``run`` carries the facts the history cannot know (model, dataset, global_step,
    world_size, wall_time_s, samples_per_s, ...); they are copied in as given.
    """
    final = history[-1] if history else {}
    best = _best_record(history)
    final_bps = _session_bps(final, sessions)
    result: dict[str, Any] = {
        "model": run.get("model"),
        "dataset": run.get("dataset"),
        "best_val_bps_overall": finite_or_none(best[OVERALL_KEY]) if best else None,
        "final_val_bps_overall": finite_or_none(final.get(OVERALL_KEY)),
        "val_bps": final_bps,
        "best_val_bps": _session_bps(best, sessions) if best else dict.fromkeys(sessions),
        "best_epoch": int(best["epoch"]) + 1 if best else None,
        "epochs": int(final["epoch"]) + 1 if final else 0,
    }
    result.update({k: v for k, v in run.items() if k not in result})
    result.update(_oracle_fields(oracle, final_bps))
    headline = metric_fields(history, OVERALL_KEY, V1_LABEL, "v1", result.get("oracle_bps_overall"))
    headline["optimum_ratio"] = result.get("oracle_ratio_overall")  # mean of session ratios
    result.update({k: v for k, v in headline.items() if k not in result})
    return result


def build_classification_result(
    *,
    history: Sequence[Mapping[str, Any]],
    tasks: Sequence[str],
    run: Mapping[str, Any],
    optimum: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """The video family's result object (pure): macro accuracy (mean class-balanced
    accuracy over tasks) as the headline, per-task accuracy, balanced accuracy and macro
    F1 of the final and the best epoch, and the Bayes-optimal scores where known."""
    final = history[-1] if history else {}
    best = _best_record(history, CLASSIFICATION_KEY) or {}

    def per_task(record: Mapping[str, Any], prefix: str) -> dict[str, float | None]:
        return {task: finite_or_none(record.get(f"{prefix}/{task}")) for task in tasks}

    overall_optimum = None
    if optimum:
        overall_optimum = sum(o["balanced_accuracy"] for o in optimum.values()) / len(optimum)
    result: dict[str, Any] = {
        "model": run.get("model"),
        "dataset": run.get("dataset"),
        **metric_fields(
            history, CLASSIFICATION_KEY, CLASSIFICATION_LABEL, "video", overall_optimum
        ),
        "val_acc": per_task(final, "val_acc"),
        "val_balanced_acc": per_task(final, "val_bacc"),
        "val_f1": per_task(final, "val_f1"),
        "best_val_acc": per_task(best, "val_acc"),
        "best_val_f1": per_task(best, "val_f1"),
        "final_val_macro_f1": finite_or_none(final.get("val_macro_f1")),
    }
    if optimum:
        result["optimum_acc"] = {t: finite_or_none(o["accuracy"]) for t, o in optimum.items()}
        result["optimum_balanced_acc"] = {
            t: finite_or_none(o["balanced_accuracy"]) for t, o in optimum.items()
        }
    result.update({k: v for k, v in run.items() if k not in result})
    return result


def emit_line(text: str, stream: TextIO | None = None) -> None:
    """Write ``text`` + newline in ONE write call, then flush.

    Processes of one pod (torchrun) share its stdout; ``print`` issues separate writes
    for the text and the newline when unbuffered, so lines of two ranks could fuse and
    the controller would miss the result line.
    """
    out = stream or sys.stdout
    out.write(text + "\n")
    out.flush()


def result_line(result: Mapping[str, Any]) -> str:
    """The single stdout line the controller parses (compact JSON, no NaN)."""
    return RESULT_LINE_PREFIX + json.dumps(result, separators=(",", ":"), allow_nan=False)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON via a temp file + rename so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, allow_nan=False, default=_json_default)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_result_line(lines: Iterable[str]) -> dict[str, Any] | None:
    """The JSON object of the last result line among ``lines`` (None: none, or unparsable).

    Lines may carry a log prefix of whitespace (``kubectl logs``) but nothing else: the
    marker must start the line, so a traceback quoting it does not count.
    """
    marker = RESULT_LINE_PREFIX.strip()
    found = None
    for line in lines:
        text = line.strip()
        if text.startswith(marker):
            found = text[len(marker) :].strip()
    if found is None:
        return None
    try:
        parsed = json.loads(found)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def result_record(job: Mapping[str, Any], result: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ledger record of a finished (or failed) run: its job's identity and final
    conditions, and its result object (None: the run failed before it had one).

    One shape for every ledger: the local backend's ``_results/<job>.json``, the trainer's
    ``<run dir>/result.json`` on the checkpoints volume and a cluster's result ConfigMaps.
    """
    metadata = job.get("metadata") or {}
    return {
        "job": {
            "metadata": {key: metadata[key] for key in RECORD_METADATA if key in metadata},
            "status": {"conditions": list((job.get("status") or {}).get("conditions") or [])},
        },
        "result": dict(result) if result is not None else None,
    }


def parse_result_record(payload: Any) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """(job, result) of a record as :func:`result_record` writes it; None if it is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("job"), dict):
        return None
    metadata = payload["job"].get("metadata")
    if not isinstance(metadata, dict) or not metadata.get("name"):
        return None
    result = payload.get("result")
    return payload["job"], result if isinstance(result, dict) else None


def run_identity(
    env: Mapping[str, str],
    run: Mapping[str, Any],
    state: str,
    reason: str,
    message: str = "",
    wall_time_s: float | None = None,
) -> dict[str, Any]:
    """The job as the trainer knows it (the chart's ``COREJOB_*`` variables, else the run's
    own ``run_dir``/``model``/``dataset``), shaped like the job object so the controller
    reads trainer records and its own alike.

    ``state`` is the operator's condition type the run ends in (``Succeeded``, ``Failed``;
    ``Restarting`` for a retryable exit the operator restarts, a later attempt replaces
    the record). Its creation time is now less ``wall_time_s`` (the run's, over all
    attempts): close to the job's own, so runs of one cell order as their jobs would.
    """
    labels = {
        LABEL_MODEL: label_value(config_label(env.get("COREJOB_MODEL") or run["model"])),
        LABEL_DATASET: label_value(config_label(env.get("COREJOB_DATASET") or run["dataset"])),
    }
    if env.get("COREJOB_SWEEP"):
        labels[LABEL_SWEEP] = env["COREJOB_SWEEP"]
    now = time.time()
    started = now - wall_time_s if wall_time_s else now
    condition = {"type": state, "status": "True", "reason": reason, "message": message,
                 "lastTransitionTime": _rfc3339(now)}  # fmt: skip
    return {
        "metadata": {
            "name": env.get("COREJOB_JOB_NAME") or Path(run["run_dir"]).name,
            "labels": {key: value for key, value in labels.items() if value},
            "creationTimestamp": _rfc3339(started),
        },
        "status": {"conditions": [condition]},
    }


def write_result_record(run_dir: Path, job: Mapping[str, Any], result: Mapping | None) -> Path:
    """Write the run's record into ``run_dir`` atomically (readers never see half of it)."""
    path = Path(run_dir) / RESULT_RECORD_FILE
    write_json_atomic(path, result_record(job, result))
    return path


def _rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def label_value(text: str) -> str:
    """``text`` as the chart makes a label value (``corejob.labelValue``): characters
    outside ``[A-Za-z0-9_.-]`` become ``-``, at most 63, no leading/trailing ``-_.``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63].strip("-_.")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def clean_history(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """History with non-finite floats as ``null`` (strict JSON)."""
    return [
        {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in record.items()}
        for record in history
    ]


def config_label(name_or_path: str) -> str:
    """``synthetic_tiny`` for a name, the file stem for a YAML path (result fields, W&B tags)."""
    path = Path(name_or_path)
    return path.stem if path.suffix in (".yaml", ".yml") else name_or_path
