"""The nightly maintenance window's building blocks: audit, params, operators and window steps."""
