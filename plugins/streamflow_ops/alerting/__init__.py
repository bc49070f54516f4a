"""Alerts on change: state-change detection, Slack Block Kit and PagerDuty Events v2."""
