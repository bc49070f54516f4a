"""recover_bronze as an operator: the DAG file only wires it."""
from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk import BaseOperator

from streamflow_ops.config import get_config
from streamflow_ops.params import ParamError, rendered
from streamflow_ops.recovery.bronze import parse_request
from streamflow_ops.recovery.replay import run_replay
from streamflow_ops.store import Actor


class RecoverBronzeOperator(BaseOperator):
    """Re-insert the bronze rows of [start, end) that are missing, read back from a Kafka topic.

    :param start: ISO-8601 date-time with a zone (e.g. 2026-12-01T10:00:00Z); None: the run's ``start`` param.
    :param end: exclusive end of the range, same form; at most ``recovery.max_range_hours`` after start;
        None: the run's ``end`` param.
    :param topic: one of ``kafka.topics``; None: the run's ``topic`` param.
    :param dry_run: count what would be inserted and change nothing; None: the run's ``dry_run`` param
        (default true).

    Every argument is templated ("{{ params.start }}" renders). Bad values fail the task without retries,
    naming the param; a Kafka or PostgreSQL failure is retried (the run is idempotent). Returns the
    replay's report (XCom ``return_value``): per partition the offsets read, rows in range, malformed
    messages, rows missing from bronze and inserted, and the part of the range Kafka no longer holds with
    the backup to restore instead.
    """

    template_fields: Sequence[str] = ("start", "end", "topic", "dry_run")
    ui_color = "#d5e8d4"

    def __init__(self, *, start: str | None = None, end: str | None = None, topic: str | None = None,
                 dry_run: bool | None = None, **kwargs):
        super().__init__(**kwargs)
        self.start, self.end, self.topic, self.dry_run = start, end, topic, dry_run

    def execute(self, context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        config = get_config()
        params = {name: rendered(getattr(self, name)) for name in self.template_fields}
        params = {name: context["params"].get(name) if value is None else value for name, value in params.items()}
        try:
            request = parse_request(params, topics=config.kafka.topics,
                                    max_range_hours=config.recovery.max_range_hours)
        except ParamError as exc:
            raise AirflowFailException(str(exc)) from None
        ti = context["ti"]
        replay = run_replay(config, request, Actor(ti.dag_id, ti.run_id, ti.task_id, config.warehouse.ops_schema))
        self.log.info("%s", replay.summary())
        if replay.not_held:
            self.log.warning("Kafka no longer holds %s .. %s of the range: restore it from %s", *replay.not_held,
                             replay.restore_instead or "a backup (none recorded as verified or completed)")
        return replay.to_dict()
