-- The report reads every number it needs from these two indexes alone (index-only scans, no heap):
-- each fingerprint's window is one ordered range of the first, so its percentiles need no sort of the
-- whole window; the summary and the timeline read ranges of the second. They replace 0001's indexes,
-- which lacked the columns for timeouts, errors and the slowest call's id.
CREATE INDEX slow_queries_fingerprint_report_idx ON slow_queries (fingerprint, started_at)
    INCLUDE (duration_ms, timed_out, sqlstate, id);
DROP INDEX slow_queries_fingerprint_idx;

CREATE INDEX slow_queries_started_at_report_idx ON slow_queries (started_at)
    INCLUDE (fingerprint, duration_ms, timed_out, sqlstate);
DROP INDEX slow_queries_started_at_idx;

-- Index-only scans skip the heap only for pages the visibility map marks all-visible, which VACUUM
-- does. By default autovacuum runs after inserts reach 20% of the table, so on a large table the most
-- recent day (the usual report window) would be read from the heap, many times slower. Vacuum this
-- append-only table every 10,000 inserts instead; each run only visits the pages added since the last.
ALTER TABLE slow_queries SET (autovacuum_vacuum_insert_threshold = 10000, autovacuum_vacuum_insert_scale_factor = 0);
