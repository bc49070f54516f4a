"""Airflow housekeeping that works on Airflow 3: task logs on every worker, metadata via `airflow db clean`."""
