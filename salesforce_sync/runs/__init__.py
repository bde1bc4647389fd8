"""Runs in plain Python, each usable without Dagster: a client for an integration (`connection`), one sync
window end to end (`window`), Id reconciliation (`reconcile`), the integration's lease (`lease`), health checks
and preflight (`health`), preview counts (`preview`) and alerts to its owners (`alerts`)."""
