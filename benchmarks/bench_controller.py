"""Controller benchmark: submit throughput and API requests spent tracking 100 jobs.

Against the kmock-based API server emulator (tests/support) over real HTTP:

1. render + validate + submit 100 jobs through ``KubernetesBackend`` (jobs/s);
2. a fake operator finishes them over ~3 s while corejob tracks all of them with one
   list + one watch; we count the API requests corejob made;
3. the same 100 jobs tracked the kubeflow-training SDK's way, one
   ``TrainingClient.wait_for_job_conditions`` poller per job (1 s interval, in threads;
   the SDK's default is 15 s, which would make the run slow, not the count lower per job).

Target: corejob needs >= 10x fewer requests than per-job polling.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

JOBS = 100
FINISH_SPREAD_S = 3.0
SDK_POLL_S = 1


def finish_jobs_later(cluster: Any, names: list[str]) -> threading.Thread:
    """The fake operator marks job i Succeeded at 0.5 s + i * spread / N."""

    def finish() -> None:
        start = time.monotonic()
        for index, name in enumerate(names):
            delay = 0.5 + index * FINISH_SPREAD_S / len(names) - (time.monotonic() - start)
            time.sleep(max(0.0, delay))
            cluster.operator.set_condition(name, "Succeeded")

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def submit_jobs(backend: Any, sweep: str, namespace: str) -> tuple[list[str], float]:
    from corejob.job.spec import JobRequest, build_job

    started = time.perf_counter()
    names = []
    for seed in range(JOBS):
        request = JobRequest("res_small", "synthetic_tiny", sweep=sweep,
                             values={"trainer": {"seed": seed}})  # fmt: skip
        names.append(backend.submit(build_job(request, namespace)).name)
    return names, time.perf_counter() - started


def requests_during(cluster: Any, action: Any) -> int:
    before = len(cluster.controller_requests())
    action()
    return len(cluster.controller_requests()) - before


def track_with_watch(backend: Any, sweep: str, names: list[str]) -> None:
    from corejob.job.state import LABEL_SWEEP, summarize

    def all_finished(jobs: dict[str, Any]) -> bool:
        return all(name in jobs and summarize(jobs[name]).state.finished for name in names)

    with backend.track({LABEL_SWEEP: sweep}) as tracker:
        assert tracker.wait_until(all_finished, 60), "watch tracking did not see every job finish"


def track_with_sdk_pollers(kubeconfig: Path, namespace: str, names: list[str]) -> None:
    from kubeflow.training import TrainingClient

    client = TrainingClient(config_file=str(kubeconfig), namespace=namespace)

    def wait(name: str) -> None:
        client.wait_for_job_conditions(name, wait_timeout=60, polling_interval=SDK_POLL_S)

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        list(pool.map(wait, names))


def run() -> list[dict[str, Any]]:
    from corejob.backends.kubernetes.backend import KubernetesBackend
    from tests.support.kube_cluster import fake_cluster

    previous = os.environ.get("KUBECONFIG")
    with tempfile.TemporaryDirectory() as tmp, fake_cluster(Path(tmp), "bench") as cluster:
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)  # restored below: other modules
        try:
            rows = measure(cluster, KubernetesBackend())
        finally:
            if previous is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = previous
    return rows


def measure(cluster: Any, backend: Any) -> list[dict[str, Any]]:
    """Submit, track with the watch, then track the SDK's way; the benchmark rows."""
    names, submit_s = submit_jobs(backend, "watch", "bench")
    operator = finish_jobs_later(cluster, names)
    watch_requests = requests_during(cluster, lambda: track_with_watch(backend, "watch", names))
    operator.join()
    sdk_names, _ = submit_jobs(backend, "sdk", "bench")
    operator = finish_jobs_later(cluster, sdk_names)
    poll_requests = requests_during(
        cluster, lambda: track_with_sdk_pollers(cluster.kubeconfig, "bench", sdk_names)
    )
    operator.join()
    ratio = poll_requests / max(watch_requests, 1)
    return [
        {"name": f"render+submit {JOBS} jobs", "value": JOBS / submit_s, "unit": "jobs/s",
         "target": ">= 5", "ok": JOBS / submit_s >= 5},
        {"name": "tracking requests, corejob watch", "value": watch_requests,
         "unit": "requests", "target": None, "ok": None},
        {"name": f"tracking requests, SDK per-job polling ({SDK_POLL_S}s)",
         "value": poll_requests, "unit": "requests", "target": None, "ok": None},
        {"name": "request reduction (polling / watch)", "value": ratio, "unit": "x",
         "target": ">= 10", "ok": ratio >= 10},
    ]  # fmt: skip


if __name__ == "__main__":
    for row in run():
        print(row)
