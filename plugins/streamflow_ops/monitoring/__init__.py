"""Monitoring stack checks: Prometheus targets, Alertmanager's firing alerts, Grafana's health."""
