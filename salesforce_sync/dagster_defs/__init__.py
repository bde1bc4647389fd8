"""The Dagster wiring: assets, checks, sensors, IO manager, resources and definitions. Thin by design:
the logic lives in plain Python (pipeline, health, store) and is tested without Dagster."""
