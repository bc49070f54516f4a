"""StreamFlow Ops: the StreamFlow Analytics operations runbook as Airflow DAGs, operators and sensors."""
