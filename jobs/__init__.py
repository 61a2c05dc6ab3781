"""Batch jobs: one module per job, runnable as ``python -m jobs.<name>`` or with spark-submit."""
