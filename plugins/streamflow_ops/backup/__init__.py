"""Backups you can trust: CloudNativePG Backup CRs and pg_dump exports, each verified and audited."""
