"""Keep and read the cluster's results ledger (the shell over :mod:`.config_map`).

A record is written the first time the controller sees a finished job: ``corejob
results``/``status``/``submit --wait``/``sweep`` reading its result, and ``corejob
cancel`` before it deletes the job. A run is recorded once (records are never updated:
a finished run does not change); what is known to be recorded is remembered for the
life of the backend, so a ``results`` over many jobs lists the ledger once and creates
only the records that are missing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from corejob.backends.kubernetes.api import KubeApi
from corejob.backends.kubernetes.ledger.config_map import (
    ledger_selector,
    record_config_map,
    record_name,
    records_of,
    with_exit_codes,
)
from corejob.errors import ConflictError, ForbiddenError
from corejob.job.state import JobState, summarize

Job = dict[str, Any]


class ResultLedger:
    """The records of one namespace, through one API connection."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self._known: set[str] | None = None  # record names, once listed
        self._warned = False

    def records(self, selector: dict[str, str] | None) -> list[tuple[Job, dict[str, Any] | None]]:
        """(job, result) of every record of the jobs ``selector`` picks (server-side)."""
        config_maps = self.api.list_config_maps(ledger_selector(selector))
        if not selector:
            self._known = {c["metadata"]["name"] for c in config_maps}
        return records_of(config_maps)

    def keep_finished(
        self,
        job: Job,
        result_of: Callable[[str], dict[str, Any] | None],
        exit_codes_of: Callable[[str], list[int]],
    ) -> None:
        """Record ``job`` if it finished and is not recorded yet: a succeeded run with its
        result (none readable: nothing kept, a later look may read it), a failed one with
        its exit codes. Reads happen only for runs not yet recorded."""
        state = summarize(job).state
        if not state.finished or self.has(job):
            return
        name = job["metadata"]["name"]
        if state == JobState.SUCCEEDED:
            result = result_of(name)
            if result is not None:
                self.keep(job, result, [])
        else:
            self.keep(job, None, exit_codes_of(name))

    def has(self, job: Job) -> bool:
        """Whether ``job``'s run is recorded (as far as this backend has listed or written)."""
        try:
            known = self._known if self._known is not None else self._list_names()
        except ForbiddenError:
            return False
        return record_name(job) in known

    def keep(self, job: Job, result: dict[str, Any] | None, exit_codes: list[int]) -> bool:
        """Record a finished ``job`` unless it is recorded; True when written now.

        A Role without ConfigMap create/list leaves the ledger empty, never the answer:
        the record is a copy, the job and its result are what was asked for.
        """
        name = record_name(job)
        try:
            known = self._known if self._known is not None else self._list_names()
            if name in known:
                return False
            self.api.create_config_map(record_config_map(with_exit_codes(job, exit_codes), result))
        except ConflictError:
            pass  # another corejob recorded it meanwhile
        except ForbiddenError as error:
            if not self._warned:
                print(f"corejob: results ledger not kept: {error}", file=sys.stderr)
                self._warned = True
            return False
        known.add(name)
        return True

    def _list_names(self) -> set[str]:
        self.records(None)
        return self._known if self._known is not None else set()
