"""Business checks on the warehouse: fraud rate and pipeline latency."""
