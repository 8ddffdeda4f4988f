"""The operator's lifecycle rules as pure transitions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corejob.backends.local.policy import (
    FAILED,
    PENDING,
    RUNNING,
    SUCCEEDED,
    ReplicaState,
    RunPolicy,
    exit_code_of,
    reconcile,
    set_condition,
    should_restart,
)
from corejob.job.state import JobState, state_from_conditions


def gang(policy="ExitCode"):
    return {
        "master-0": ReplicaState("master-0", "Master", policy),
        "worker-0": ReplicaState("worker-0", "Worker", policy),
    }


def step(states, status=None, policy=None, elapsed=0.0, clock=0.0):
    policy = policy or RunPolicy()
    return reconcile("job", status or {}, states, policy, elapsed_s=elapsed, clock=clock, now="t")


def running(states):
    return {rid: replace(s, phase=RUNNING) for rid, s in states.items()}


def exited(states, rid, code):
    phase = SUCCEEDED if code == 0 else FAILED
    return {**states, rid: replace(states[rid], phase=phase, exit_code=code, failed_at=None)}


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("ExitCode", 137, True),
        ("ExitCode", 129, True),
        ("ExitCode", 128, True),
        ("ExitCode", 127, False),
        ("ExitCode", 2, False),
        ("OnFailure", 1, True),
        ("Always", 2, True),
        ("Never", 143, False),
    ],
)
def test_restart_rule(policy, code, restart):
    assert should_restart(policy, code) is restart


def test_signals_become_128_plus_signal():
    assert exit_code_of(-9) == 137
    assert exit_code_of(3) == 3


def test_first_launch_starts_everyone_and_master_running_marks_the_job_running():
    decision = step(gang())
    assert sorted(decision.start) == ["master-0", "worker-0"]
    decision = step(running(gang()), decision.status)
    assert state_from_conditions(decision.status["conditions"])[:2] == (
        JobState.RUNNING,
        "PyTorchJobRunning",
    )
    assert decision.status["replicaStatuses"]["Worker"]["active"] == 1


def test_master_success_succeeds_the_job_and_stops_workers_per_clean_pod_policy():
    states = exited(running(gang()), "master-0", 0)
    decision = step(states, policy=RunPolicy(clean_pod_policy="Running"))
    state, reason, _ = state_from_conditions(decision.status["conditions"])
    assert (state, reason) == (JobState.SUCCEEDED, "PyTorchJobSucceeded")
    assert decision.stop == ["worker-0"]
    assert decision.status["replicaStatuses"]["Master"]["succeeded"] == 1
    assert not decision.finished  # the worker is still running
    assert step(states, policy=RunPolicy(clean_pod_policy="None")).stop == []


def test_retryable_failure_restarts_the_gang_once_it_is_quiet():
    states = exited(running(gang()), "worker-0", 137)
    decision = step(states, clock=10.0)
    assert state_from_conditions(decision.status["conditions"])[1] == "PyTorchJobRestarting"
    assert decision.replicas["worker-0"].phase == PENDING
    assert decision.start == [] and decision.stop == []  # the master still runs
    later = step(decision.replicas, decision.status, clock=50.0)
    assert later.stop == ["master-0"]  # past the gang grace: stop the survivor
    quiet = exited(later.replicas, "master-0", 129)
    decision = step(quiet, later.status, clock=51.0)
    assert sorted(decision.start) == ["master-0", "worker-0"]
    assert sum(r.restarts for r in decision.replicas.values()) == 2


def test_permanent_failure_fails_the_job_and_stops_the_rest():
    decision = step(exited(running(gang()), "master-0", 2))
    state, reason, message = state_from_conditions(decision.status["conditions"])
    assert (state, reason) == (JobState.FAILED, "PyTorchJobFailed")
    assert "1 Master replica(s) failed" in message
    assert decision.stop == ["worker-0"]
    assert decision.start == []


def test_backoff_limit_counts_restarts():
    states = exited(running(gang()), "worker-0", 137)
    decision = step(states, policy=RunPolicy(backoff_limit=0))
    assert "backoff limit" in state_from_conditions(decision.status["conditions"])[2]


def test_active_deadline_fails_the_job():
    decision = step(running(gang()), policy=RunPolicy(active_deadline_s=5), elapsed=6)
    state, _, message = state_from_conditions(decision.status["conditions"])
    assert state is JobState.FAILED and "deadline" in message
    assert sorted(decision.stop) == ["master-0", "worker-0"]


def test_conditions_follow_the_operator():
    status = set_condition({}, "Created", "c", "t0")
    status = set_condition(status, RUNNING, "r", "t1")
    status = set_condition(status, "Restarting", "x", "t2")
    assert [c["type"] for c in status["conditions"]] == ["Created", "Restarting"]
    status = set_condition(status, RUNNING, "r", "t3")
    status = set_condition(status, SUCCEEDED, "s", "t4")
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Created": "True",
        "Running": "False",
        "Succeeded": "True",
    }
    failed = set_condition({}, FAILED, "f", "t5")
    assert set_condition(failed, RUNNING, "r", "t6") is failed  # nothing changes once Failed
