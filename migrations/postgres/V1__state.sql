-- reportsplit's shared state (docs/operations.md, "PostgreSQL state").
-- Applied by refinery at start-up, under an advisory lock, so that many
-- workers starting together migrate once.

-- The sync checkpoint of each stream (server + filters), advanced by the
-- one worker that holds the stream's advisory lock.
CREATE TABLE reportsplit_stream (
    stream     text PRIMARY KEY,
    checkpoint text,          -- RFC 3339: every report updated before it was handled
    saved_at   text           -- RFC 3339: when the checkpoint was saved
);

-- The windows of backfill ranges, claimed by workers under a lease.
CREATE TABLE reportsplit_window (
    stream      text    NOT NULL,
    key         text    NOT NULL,          -- field:since/until, as in the embedded state
    field       text    NOT NULL,          -- _lastUpdated or date
    since_ns    bigint  NOT NULL,          -- window start, Unix nanoseconds (inclusive)
    until_ns    bigint  NOT NULL,          -- window end, Unix nanoseconds (exclusive)
    done        boolean NOT NULL DEFAULT false,
    reached     text,                      -- RFC 3339 page cursor: every report before it handled
    reports     bigint  NOT NULL DEFAULT 0,-- reports handled in the window so far
    owner       text,                      -- the worker holding the lease, NULL when free
    lease_until timestamptz,               -- the lease expires then unless renewed
    takeovers   integer NOT NULL DEFAULT 0,-- claims of an expired lease (a worker died)
    PRIMARY KEY (stream, key)
);
CREATE INDEX reportsplit_window_open ON reportsplit_window (stream, field, since_ns)
    WHERE NOT done;
