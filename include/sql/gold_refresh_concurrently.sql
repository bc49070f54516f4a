-- Readers keep reading during the refresh; needs a populated view with a usable unique index.
refresh materialized view concurrently {view}
