"""Whether a run record read from the checkpoints claim describes a run already known (pure).

The trainer's ``result.json`` and the controller's result ConfigMap describe a run from
two sides that share no id: the trainer never learns its job's uid or creation time (the
record's creation time is its own estimate). What they do share:

- the job name (the run directory is ``/runs/<job name>``);
- the result object itself: the ``COREJOB_RESULT`` line the controller reads is the very
  object the trainer writes into ``result.json``, so two results are equal exactly when
  they are one run's (a rerun differs in wall time and attempts at least);
- time: the trainer writes its record before its process exits, so within its job's life
  (created ≤ written ≤ the operator's terminal condition). A later job of the same name
  can only be created after the earlier one was deleted, so its life does not overlap.

A record that matches a live job is left to that job (the usual path records it); one that
matches a ledger record is not written twice.
"""

from __future__ import annotations

from typing import Any

from corejob.backends.kubernetes.ledger.claim_reader import rfc3339_seconds
from corejob.job.state import state_from_conditions

Job = dict[str, Any]
# Clocks of nodes and of the API server differ a little, and both round to seconds.
CLOCK_SLACK_S = 2.0


def written_at(job: Job) -> float | None:
    """When the record's run ended: its newest true condition, else its creation."""
    conditions = [c for c in (job.get("status") or {}).get("conditions") or []
                  if str(c.get("status")) == "True"]  # fmt: skip
    times = [rfc3339_seconds(c.get("lastTransitionTime")) for c in conditions]
    known = [t for t in times if t is not None]
    if known:
        return max(known)
    return rfc3339_seconds(job.get("metadata", {}).get("creationTimestamp"))


def same_run(
    record: Job,
    record_result: dict[str, Any] | None,
    known: Job,
    known_result: dict[str, Any] | None,
) -> bool:
    """Whether the claim's ``record`` is the run ``known`` (a live job or a ledger record)."""
    if record.get("metadata", {}).get("name") != known.get("metadata", {}).get("name"):
        return False
    if record_result is not None and known_result is not None:
        return record_result == known_result
    written = written_at(record)
    created = rfc3339_seconds(known.get("metadata", {}).get("creationTimestamp"))
    if written is None or created is None:
        return True  # cannot tell apart: better one row too few than a duplicate
    if written < created - CLOCK_SLACK_S:
        return False  # written before this job existed: an earlier run of the name
    state, _, _ = state_from_conditions((known.get("status") or {}).get("conditions"))
    if not state.finished:  # still running (or being deleted before it ended)
        return True
    ended = written_at(known)
    return ended is None or written <= ended + CLOCK_SLACK_S
