-- One row per slow execution seen by queryopt; the report aggregates it in SQL.
CREATE TABLE slow_queries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at       timestamptz NOT NULL,
    fingerprint      text NOT NULL,
    kind             text NOT NULL,
    normalized_sql   text NOT NULL,
    sql_text         text NOT NULL,
    duration_ms      double precision NOT NULL CHECK (duration_ms >= 0),
    row_count        bigint,
    timed_out        boolean NOT NULL DEFAULT false,
    sqlstate         char(5),
    hints            text,
    cache_outcome    text,
    database_name    text NOT NULL,
    role_name        text NOT NULL,
    application_name text,
    source           text,
    params           jsonb,
    plan             jsonb
);

COMMENT ON TABLE slow_queries IS 'Slow statements recorded by queryopt (one row per execution).';
COMMENT ON COLUMN slow_queries.sql_text IS 'The statement as sent to the server, hint block included.';
COMMENT ON COLUMN slow_queries.params IS 'Parameter values, only when RecorderPolicy.capture_params is on (truncated).';
COMMENT ON COLUMN slow_queries.plan IS 'EXPLAIN (FORMAT JSON) of the statement, captured off the hot path and rate-limited.';

-- Time-window scans for the report read (started_at, fingerprint, duration_ms) from the index alone.
CREATE INDEX slow_queries_started_at_idx ON slow_queries (started_at) INCLUDE (fingerprint, duration_ms);
CREATE INDEX slow_queries_fingerprint_idx ON slow_queries (fingerprint, started_at);
