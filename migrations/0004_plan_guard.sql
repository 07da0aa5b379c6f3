-- Plan guard (issue 19): which plan each recorded call ran with, every plan seen per fingerprint,
-- the pins that ask pg_hint_plan for a chosen plan, and a log of every pin action.
ALTER TABLE slow_queries ADD COLUMN plan_hash text;

COMMENT ON COLUMN slow_queries.plan_hash IS 'Shape hash of the plan last captured for this fingerprint when the call was recorded.';

CREATE TABLE plan_history (
    fingerprint    text NOT NULL,
    plan_hash      text NOT NULL,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    calls          bigint NOT NULL DEFAULT 0,
    total_ms       double precision NOT NULL DEFAULT 0,
    captures       integer NOT NULL DEFAULT 0,
    normalized_sql text NOT NULL,
    sql_text       text NOT NULL,
    plan           jsonb NOT NULL,
    PRIMARY KEY (fingerprint, plan_hash)
);

COMMENT ON TABLE plan_history IS 'Every plan shape captured per fingerprint, with the recorded calls that ran while it was in use.';
COMMENT ON COLUMN plan_history.sql_text IS 'The statement of the latest capture (what a pin is verified with).';

CREATE TABLE plan_pins (
    fingerprint text PRIMARY KEY,
    plan_hash   text NOT NULL,
    hints       text NOT NULL,
    mode        text NOT NULL CHECK (mode IN ('manual', 'automatic')),
    pinned_at   timestamptz NOT NULL DEFAULT now(),
    baseline_ms double precision,
    note        text
);

COMMENT ON TABLE plan_pins IS 'Hint sets that reproduce a chosen plan; every queryopt process applies them to their fingerprint.';
COMMENT ON COLUMN plan_pins.baseline_ms IS 'Mean latency of the plan the pin replaced: an automatic pin not faster than this is removed.';

CREATE TABLE plan_actions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    fingerprint text NOT NULL,
    plan_hash   text,
    action      text NOT NULL,
    actor       text NOT NULL,
    detail      text NOT NULL
);

CREATE INDEX plan_actions_fingerprint_idx ON plan_actions (fingerprint, at);
