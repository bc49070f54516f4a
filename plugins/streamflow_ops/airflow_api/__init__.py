"""Airflow self-checks through its own REST API (never the metadata database)."""
