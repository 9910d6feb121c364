-- Queues of reports to enrich that must survive a crash: `serve`'s notified
-- reports (queue 'serve:<stream>'), and later the MLLP spool. An entry
-- leaves its queue once its report was written or dead-lettered.
CREATE TABLE reportsplit_queue (
    queue  text      NOT NULL,
    seq    bigserial NOT NULL,   -- the entry's place: oldest first
    report text      NOT NULL,   -- the DiagnosticReport id
    PRIMARY KEY (queue, seq)
);
