"""Run a rendered PyTorchJob on one machine the way the Kubeflow training operator would.

``replicas`` turns the job object into per-replica launch plans (the operator's env
injection, volume mapping) and ``policy`` holds the operator's restart / success /
deadline rules as pure state transitions. ``store`` persists the job object with its
operator-shaped ``status`` and ``supervisor`` is the background process that runs the
replicas (as local processes, ``processes``, or as containers,
``corejob.backends.container.runner``) and keeps that status
current, so that any later CLI invocation can report on the job.
"""
