-- Bulk Data exports kicked off by `backfill --from-export`, one per stream
-- and request (its `_since` and `_typeFilter`): the kick-off is recorded
-- under an advisory lock, so a restarted or second worker polls the same
-- job instead of kicking off another. The export's NDJSON files are then
-- windows of their own (reportsplit_window, field '$export@<transactionTime>',
-- bounds = the file's place), claimed and taken over like search windows,
-- their cursor (`reached`) the lines done.
CREATE TABLE reportsplit_export (
    stream           text    NOT NULL,
    request          text    NOT NULL,   -- the kick-off's parameters
    status           text    NOT NULL,   -- the status URL
    transaction_time text,               -- RFC 3339, from the manifest
    files            text[]  NOT NULL DEFAULT '{}', -- the DiagnosticReport files
    finished         boolean NOT NULL DEFAULT false, -- files done, job deleted
    kicked_off_by    text    NOT NULL,   -- the worker that kicked it off
    kicked_off_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, request)
);
