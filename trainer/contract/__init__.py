"""The trainer's side of the job contract (docs/CONTRACT.md), one module per clause.

``distributed`` (the env variables a launcher injects → ranks and Lightning arguments),
``exit_codes`` (what each exit means to a restart policy; shared with the controller),
``errors`` (one-line errors and their codes), ``preemption`` (SIGTERM → ``last.ckpt`` →
143), ``result`` (the ``COREJOB_RESULT`` line and ``metrics.json``) and ``progress`` (the
``COREJOB_PROGRESS`` lines). Importing this
package imports nothing heavy.
"""
