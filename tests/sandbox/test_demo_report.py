"""`make demo`'s pipeline line says only what happened while a DAG ran (the consumer's counters are cumulative)."""
from __future__ import annotations

from scripts import demo


def test_pipeline_line_reports_the_slowest_write_only_when_it_happened_meanwhile(monkeypatch):
    before = {"seeded_bronze": 1_000, "live_bronze": 10, "live_silver": 9}
    monkeypatch.setattr(demo, "_warehouse_counts",
                        lambda layout: {"seeded_bronze": 400, "live_bronze": 70, "live_silver": 68})
    stats = {"alerts": 7, "error_count": 1, "max_write_s": 0.09}
    monkeypatch.setattr(demo.pipeline, "stats", lambda layout, role: stats)

    quiet = demo._pipeline_line(None, before, {"alerts": 2, "error_count": 1, "max_write_s": 0.09})
    assert quiet == ("pipeline meanwhile: +60 bronze and +59 silver rows, +5 fraud alerts, 0 write errors, "
                     "no write slower than 0.090 s; older bronze rows deleted: 600")
    slow = demo._pipeline_line(None, before, {"alerts": 2, "error_count": 0, "max_write_s": 0.01})
    assert "1 write errors, slowest write 0.090 s;" in slow
