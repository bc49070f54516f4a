refresh materialized view {view}
