-- The `mllp` listener's spool when the state is PostgreSQL (docs/hl7.md,
-- "The spool in PostgreSQL"): a message is a row here before its ACK goes
-- out, and stays until a writer (of any replica) has stored and enriched its
-- reports; one that fails for good stays as a dead letter until the
-- retention. It holds patient data: grant it to reportsplit's role only.
CREATE TABLE reportsplit_hl7_message (
    id           bigserial   PRIMARY KEY,   -- arrival order
    dedupe_key   text        NOT NULL UNIQUE, -- hex SHA-256 of the body: a resent message is stored once
    control_id   text        NOT NULL,      -- MSH-10, for dead letters and logs
    lock_keys    text[]      NOT NULL,      -- order:<filler system|value> of each report, patient:<system|value>
    body         bytea       NOT NULL,      -- the message as received
    received_at  timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL DEFAULT now(),
    last_error   text,                      -- why the last attempt failed (never message content)
    reason       text,                      -- its stable key (http-503, patient-not-found...)
    status       text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dead')),
    dead_at      timestamptz                -- when it became a dead letter (retention)
);
-- What the writers claim from, oldest first...
CREATE INDEX reportsplit_hl7_message_pending ON reportsplit_hl7_message (id)
    WHERE status = 'pending';
-- ...and the older messages of the same order or patient that make a message wait.
CREATE INDEX reportsplit_hl7_message_keys ON reportsplit_hl7_message USING gin (lock_keys)
    WHERE status = 'pending';
CREATE INDEX reportsplit_hl7_message_dead ON reportsplit_hl7_message (dead_at)
    WHERE status = 'dead';
