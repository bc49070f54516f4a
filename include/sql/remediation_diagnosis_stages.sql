-- PipelineLatencyHigh: how old the newest bronze row (transaction time) and the newest silver row
-- (enrichment time) are, to tell a late ingestion from a late enrichment.
select extract(epoch from now() - to_timestamp((select max({time_column}) from {bronze})))::float8 as bronze_age_s,
       extract(epoch from now() - (select max({enriched_at}) from {silver}))::float8           as silver_age_s
