"""The cluster's results ledger: one ConfigMap per finished run, kept after its job, and
the runs only the checkpoints claim still holds, read back by ``results --from-claim``."""
