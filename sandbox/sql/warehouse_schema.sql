-- Reference warehouse schema (docs/contract.md): for development and tests only; production owns its own DDL.
create schema if not exists bronze;
create schema if not exists silver;
create schema if not exists gold;

create table if not exists bronze.transactions (
    transaction_id   text primary key,
    customer_id      text,
    merchant_id      text,
    amount           numeric(12, 2),
    currency         text,
    location         text,
    transaction_time bigint,            -- epoch seconds
    ingested_at      timestamptz default now(),
    payload          jsonb
);
create index if not exists transactions_time_idx on bronze.transactions (transaction_time);

create table if not exists silver.transactions_enriched (
    transaction_id   text primary key,
    customer_id      text,
    amount           numeric(12, 2),
    fraud_score      double precision,
    transaction_time bigint,
    enriched_at      timestamptz
);
create index if not exists transactions_enriched_time_idx on silver.transactions_enriched (transaction_time);

create table if not exists silver.fraud_alerts (
    alert_id       bigserial primary key,
    transaction_id text,
    customer_id    text,
    rule_id        text,
    fraud_score    double precision,
    created_at     timestamptz
);

create materialized view if not exists gold.daily_fraud_summary as
select (to_timestamp(transaction_time) at time zone 'UTC')::date as day,
       count(*)                                           as transactions,
       count(*) filter (where fraud_score >= 0.7)         as fraudulent,
       round(avg(fraud_score)::numeric, 4)                as avg_fraud_score,
       sum(amount)                                        as total_amount
from silver.transactions_enriched
group by 1;
create unique index if not exists daily_fraud_summary_day on gold.daily_fraud_summary (day);

create materialized view if not exists gold.customer_risk_profile as
select customer_id,
       count(*)                          as transactions,
       round(avg(fraud_score)::numeric, 4) as avg_fraud_score,
       max(fraud_score)                  as max_fraud_score,
       sum(amount)                       as total_amount
from silver.transactions_enriched
group by customer_id;
create unique index if not exists customer_risk_profile_customer on gold.customer_risk_profile (customer_id);

-- No unique index: refreshed without CONCURRENTLY.
create materialized view if not exists gold.rule_effectiveness as
select rule_id, count(*) as alerts, round(avg(fraud_score)::numeric, 4) as avg_fraud_score,
       max(created_at) as last_alert_at
from silver.fraud_alerts
group by rule_id;

-- Built on another view: must be refreshed after gold.daily_fraud_summary.
create materialized view if not exists gold.fraud_trend_7d as
select day, transactions, fraudulent,
       round(fraudulent::numeric / nullif(transactions, 0), 4) as fraud_rate
from gold.daily_fraud_summary
where day > (now() at time zone 'UTC')::date - 7;
