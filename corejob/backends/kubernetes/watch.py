"""Track many PyTorchJobs with one list + one watch stream per namespace and selector.

Polling each job costs one request per job per interval; a watch costs one request per
reconnect. The tracker keeps a local cache of the selected jobs that a background thread
updates from the stream: it resumes from the last resourceVersion after a drop, relists
when the server answers 410 Gone (history compacted), and backs off on errors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client import ApiException
from kubernetes.watch.watch import iter_resp_lines

from corejob.backends.kubernetes.api import KubeApi

log = logging.getLogger(__name__)
WATCH_TIMEOUT_S = 240
POLL_FALLBACK_S = 3.0
POLL_MAX_S = 30.0
# A watch that fails this many times in a row (with any status, or none) is given up for
# listing: a server or proxy that breaks watches must not leave the cache frozen.
WATCH_FAILURES_BEFORE_POLLING = 3
Job = dict[str, Any]


class JobTracker:
    """A live cache ``name -> job`` of the jobs matching ``selector`` in the API's namespace."""

    def __init__(
        self, api: KubeApi, selector: str = "", watch_timeout_s: int = WATCH_TIMEOUT_S,
        poll_s: float = POLL_FALLBACK_S,
    ) -> None:  # fmt: skip
        self.api = api
        self.selector = selector
        self.watch_timeout_s = watch_timeout_s
        self.poll_s = poll_s  # the list interval once watching has been given up
        self.polling = False
        self.jobs: dict[str, Job] = {}
        self.resource_version = ""
        self.changes: queue.Queue[str] = queue.Queue()
        self.relists = 0
        self.watch_denied = False
        self.reconnects = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._response: Any = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> JobTracker:
        """List once (so the cache is complete when this returns), then watch in the background."""
        self.relist()
        self._thread = threading.Thread(target=self._run, name="corejob-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # already closed: nothing to release
                response.shutdown()
        if self._thread is not None:
            self._thread.join(2)

    def __enter__(self) -> JobTracker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- reading the cache ----------------------------------------------------------------

    def snapshot(self) -> dict[str, Job]:
        with self._lock:
            return dict(self.jobs)

    def wait_for_change(self, timeout_s: float) -> set[str]:
        """Block until at least one job changed (or ``timeout_s``); return the changed names."""
        names: set[str] = set()
        try:
            names.add(self.changes.get(timeout=timeout_s))
        except queue.Empty:
            return names
        while True:
            try:
                names.add(self.changes.get_nowait())
            except queue.Empty:
                return names

    def wait_until(self, predicate: Callable[[dict[str, Job]], bool], timeout_s: float) -> bool:
        """Wait until ``predicate(snapshot)`` holds; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not predicate(self.snapshot()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.wait_for_change(min(remaining, 1.0))
        return True

    # --- the stream -----------------------------------------------------------------------

    def relist(self) -> None:
        """Replace the cache with a fresh list and remember its resourceVersion."""
        listing = self.api.list_jobs(self.selector)
        fresh = {item["metadata"]["name"]: item for item in listing.get("items", [])}
        with self._lock:
            changed = set(fresh) ^ set(self.jobs) | {
                name for name in fresh if self.jobs.get(name) != fresh[name]
            }
            self.jobs = fresh
            self.resource_version = str(listing.get("metadata", {}).get("resourceVersion", ""))
        self.relists += 1
        for name in changed:
            self.changes.put(name)

    def _run(self) -> None:
        backoff, failures = 0.2, 0
        while not self._stop.is_set():
            try:
                self._watch_once()
                backoff, failures = 0.2, 0
                continue  # the server ended the stream (timeout or drop): resume at once
            except ApiException as error:
                if error.status == 410:
                    log.info("watch history expired (410 Gone): relisting")
                    self._relist_quietly()
                    continue
                if error.status in (401, 403):
                    self.watch_denied = True
                    self._poll_instead(f"watching jobs is not permitted ({error.status})")
                    return
                why = f"{error.status} {error.reason or ''}".strip()
            except Exception as error:  # connection dropped or refused: reconnect
                why = type(error).__name__
            failures += 1
            if failures >= WATCH_FAILURES_BEFORE_POLLING:
                self._poll_instead(f"watching jobs failed {failures} times in a row ({why})")
                return
            log.info("watch failed (%s); retrying in %.1fs", why, backoff)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, 10.0)
            self.reconnects += 1

    def _poll_instead(self, why: str) -> None:
        """List instead of watching, for the rest of this tracker's life (RBAC may grant
        list but not watch; a proxy may break streams). Said once, on stderr; list failures
        back off up to POLL_MAX_S."""
        self.polling = True
        print(f"corejob: warning: {why}: listing every {self.poll_s:g}s instead",
              file=sys.stderr, flush=True)  # fmt: skip
        interval = self.poll_s
        while not self._stop.wait(interval):
            try:
                self.relist()
                interval = self.poll_s
            except Exception as error:
                interval = min(interval * 2, POLL_MAX_S)
                log.info("listing jobs failed (%s); next try in %.0fs", error, interval)

    def _relist_quietly(self) -> None:
        try:
            self.relist()
        except Exception as error:
            log.info("relist failed: %s", error)
            self._stop.wait(1.0)

    def _watch_once(self) -> None:
        """One watch request from the cached resourceVersion until the server ends it."""
        self._response = self.api.open_job_watch(
            self.selector, self.resource_version, self.watch_timeout_s
        )
        try:
            for line in iter_resp_lines(self._response):
                if self._stop.is_set():
                    return
                if line.strip():
                    self._apply(json.loads(line))
        finally:
            self._response.release_conn()
            self._response = None
        self.reconnects += 1

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise ApiException(status=obj.get("code", 500), reason=obj.get("message", ""))
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            self.resource_version = version or self.resource_version
            return
        name = obj["metadata"]["name"]
        with self._lock:
            if kind == "DELETED":
                self.jobs.pop(name, None)
            else:
                self.jobs[name] = obj
            self.resource_version = version or self.resource_version
        self.changes.put(name)
