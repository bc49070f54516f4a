"""Kubernetes integration: cluster checks, and the CloudNativePG Backup wait (trigger + sensor)."""
