"""Kubernetes plumbing of the kubernetes backend: config, API calls, watch, explanations."""
