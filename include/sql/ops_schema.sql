-- Tables this package owns. Idempotent: safe to run before every task that writes to them.
create schema if not exists {ops};

create table if not exists {ops}.health_check_results (
    id          bigserial primary key,
    sweep_id    text        not null,
    checked_at  timestamptz not null default now(),
    component   text        not null,
    check_name  text        not null,
    subject     text        not null default '',
    status      text        not null check (status in ('critical', 'warning', 'unknown', 'ok', 'skipped')),
    value       numeric,
    threshold   text,
    message     text        not null,
    details     jsonb       not null default '{{}}',
    runbook     text        not null
);
-- Migrate tables created before the runbook column: backfill from details->>'runbook' (where earlier
-- versions kept it), then make it not null. Only while the column is still nullable: no scan afterwards.
alter table {ops}.health_check_results add column if not exists runbook text;
do $migrate$
begin
    if exists (select 1 from pg_attribute
               where attrelid = '{ops}.health_check_results'::regclass and attname = 'runbook' and not attnotnull) then
        update {ops}.health_check_results set runbook = coalesce(details ->> 'runbook', '') where runbook is null;
        alter table {ops}.health_check_results alter column runbook set not null;
    end if;
end
$migrate$;
create index if not exists health_check_results_check_idx
    on {ops}.health_check_results (check_name, subject, checked_at desc);
create index if not exists health_check_results_sweep_idx on {ops}.health_check_results (sweep_id);

create table if not exists {ops}.maintenance_audit (
    id            bigserial primary key,
    dag_id        text        not null,
    run_id        text        not null,
    task_id       text        not null,
    action        text        not null,
    target        text        not null default '',
    dry_run       boolean     not null,
    rows_affected bigint,
    started_at    timestamptz not null,
    finished_at   timestamptz,
    outcome       text        not null,
    details       jsonb       not null default '{{}}'
);
create index if not exists maintenance_audit_action_idx on {ops}.maintenance_audit (action, finished_at desc);

-- Consumer-group offset history for the lag evaluator's window rules.
create table if not exists {ops}.kafka_offset_samples (
    sampled_at       timestamptz not null,
    consumer_group   text        not null,
    topic            text        not null,
    partition        integer     not null,
    committed_offset bigint,
    log_end_offset   bigint      not null,
    primary key (consumer_group, topic, partition, sampled_at)
);
create index if not exists kafka_offset_samples_sampled_at_idx on {ops}.kafka_offset_samples (sampled_at);

-- What people were told, per check and subject, and what is still owed to them (alerting reads and
-- writes only this; check results never stand in for it). Owed deliveries survive failed attempts.
create table if not exists {ops}.alert_state (
    check_name        text        not null,
    subject           text        not null default '',
    status            text        check (status in ('critical', 'warning', 'ok')),
    status_since      timestamptz,
    notified_status   text        check (notified_status in ('critical', 'warning', 'ok')),
    notified_at       timestamptz,
    incident_open     boolean     not null default false,
    deferred_to       text,
    pending_page      text        check (pending_page in ('trigger', 'resolve')),
    pending_slack     text[]      not null default '{{}}',
    last_error        text,
    last_attempt_at   timestamptz,
    unmeasured_sweeps integer     not null default 0,
    unmeasured_reason text,
    recent            text[]      not null default '{{}}',
    flapping          boolean     not null default false,
    orphan            boolean     not null default false,
    last_result       jsonb,
    last_sweep_id     text,
    checked_at        timestamptz,
    updated_at        timestamptz not null default now(),
    primary key (check_name, subject)
);

-- The weekly review (weekly_review DAG): one report per week, the week that starts on week_start.
create table if not exists {ops}.weekly_review (
    week_start date        primary key,
    created_at timestamptz not null default now(),
    report     jsonb       not null
);
