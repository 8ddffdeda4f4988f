"""The run's result object: ``metrics.json``, ``history.json`` and the result line.

The controller reads the result from the master pod's log (it may have no access to the
run volume), so rank 0 prints exactly one line ``COREJOB_RESULT {json}`` at the very end.
This module is both sides of that clause: the trainer writes the line with
:func:`result_line`, every controller backend reads it with :func:`parse_result_line`.
Nothing here imports torch or Lightning, so the controller can import it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

RESULT_LINE_PREFIX = "COREJOB_RESULT "
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


def _finite(value: Any) -> float | None:
    """JSON has no NaN: missing or non-finite numbers become ``null``."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _session_bps(record: Mapping[str, Any], sessions: Sequence[str]) -> dict[str, float | None]:
    return {name: _finite(record.get(SESSION_KEY_PREFIX + name)) for name in sessions}


def _best_record(
    history: Sequence[Mapping[str, Any]], key: str = OVERALL_KEY
) -> Mapping[str, Any] | None:
    scored = [r for r in history if _finite(r.get(key)) is not None]
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
    final_value = _finite(final.get(key))
    optimum = _finite(optimum)
    return {
        "family": family,
        "metric": key,
        "metric_label": label,
        "best_metric": _finite(best[key]) if best else None,
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
        "oracle_bps": {k: _finite(v) for k, v in oracle.items()},
        "oracle_bps_overall": _finite(oracle_mean),
        "oracle_ratio": ratio,
        "oracle_ratio_overall": _finite(model_mean / oracle_mean)
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
        "best_val_bps_overall": _finite(best[OVERALL_KEY]) if best else None,
        "final_val_bps_overall": _finite(final.get(OVERALL_KEY)),
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
        return {task: _finite(record.get(f"{prefix}/{task}")) for task in tasks}

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
        "final_val_macro_f1": _finite(final.get("val_macro_f1")),
    }
    if optimum:
        result["optimum_acc"] = {t: _finite(o["accuracy"]) for t, o in optimum.items()}
        result["optimum_balanced_acc"] = {
            t: _finite(o["balanced_accuracy"]) for t, o in optimum.items()
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


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def clean_history(history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """History with non-finite floats as ``null`` (strict JSON)."""
    return [
        {k: (_finite(v) if isinstance(v, float) else v) for k, v in record.items()}
        for record in history
    ]


def config_label(name_or_path: str) -> str:
    """``synthetic_tiny`` for a name, the file stem for a YAML path (result fields, W&B tags)."""
    path = Path(name_or_path)
    return path.stem if path.suffix in (".yaml", ".yml") else name_or_path
