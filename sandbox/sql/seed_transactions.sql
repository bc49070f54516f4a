-- Synthetic transactions at a fixed step between %(start)s and %(end)s (epoch seconds).
-- Every 50th row older than %(unpromoted_before)s never reaches silver: bronze is its last copy.
-- Every 40th row is fraudulent (fraud_score >= 0.7), the rest score below 0.7.
with rows as (
    select i, (%(start)s + i * %(step)s)::bigint as t
    from generate_series(0, greatest(0, ceil((%(end)s - %(start)s)::numeric / %(step)s)::int - 1)) as i
), bronze as (
    insert into bronze.transactions
        (transaction_id, customer_id, merchant_id, amount, currency, location, transaction_time, ingested_at, payload)
    select format('tx-%%s-%%s', t, i), format('c-%%s', i %% 5000), format('m-%%s', i %% 300),
           round((5 + (i * 7919) %% 50000 / 100.0)::numeric, 2), 'EUR',
           (array['Berlin', 'Paris', 'Madrid', 'Rome', 'Lisbon'])[1 + i %% 5], t, to_timestamp(t + 1),
           jsonb_build_object('channel', (array['web', 'pos', 'app'])[1 + i %% 3])
    from rows
    on conflict do nothing
    returning transaction_id, customer_id, amount, transaction_time
), silver as (
    insert into silver.transactions_enriched
        (transaction_id, customer_id, amount, fraud_score, transaction_time, enriched_at)
    select b.transaction_id, b.customer_id, b.amount,
           case when r.i %% 40 = 0 then 0.7 + (r.i %% 30) / 100.0 else ((r.i * 7919) %% 690) / 1000.0 end,
           b.transaction_time, to_timestamp(b.transaction_time + 2)
    from bronze b join rows r on b.transaction_id = format('tx-%%s-%%s', r.t, r.i)
    where not (r.i %% 50 = 0 and r.t < %(unpromoted_before)s)
    returning transaction_id, customer_id, fraud_score, enriched_at
)
insert into silver.fraud_alerts (transaction_id, customer_id, rule_id, fraud_score, created_at)
select transaction_id, customer_id,
       (array['velocity_check', 'amount_threshold', 'geo_anomaly', 'blacklist_match'])[1 + abs(hashtext(transaction_id)) %% 4],
       fraud_score, enriched_at + interval '1 second'
from silver
where fraud_score >= 0.7;
