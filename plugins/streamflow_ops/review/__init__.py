"""The weekly review (runbook "Maintenance Windows > Weekly Maintenance (Sunday 02:00 UTC)"): alert
history, fraud by rule against last week, rules to review, capacity; a report with charts, stored and posted.

probes.py reads, evaluators.py computes (pure), gather.py assembles the sections, charts.py draws,
report.py renders (alerting/slack.py uploads the charts), run.py holds the DAG's task bodies.
"""
