"""Local sandbox: real PostgreSQL, a Kafka-protocol broker (Tansu) and Flink on loopback.

Used by `make demo`, `make ui`, the pytest fixtures and the benchmarks. `python -m sandbox --help`.
"""
