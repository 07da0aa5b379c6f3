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
