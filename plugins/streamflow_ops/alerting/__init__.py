"""Alerting on a durable record of what people were told (ops.alert_state): the pure state machine
(state), its table (store), Slack Block Kit and PagerDuty Events v2 payloads (slack, pagerduty), owed
deliveries (delivery) and one sweep's alerting (run)."""
