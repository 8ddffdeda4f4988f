"""The cluster's results ledger: one ConfigMap per finished run, kept after its job."""
