-- The log and the records it is served from.

-- One row per response. `status` mirrors the log (updated as the run starts
-- and ends) so unfinished runs can be found without reading logs.
CREATE TABLE responses (
    id                   TEXT PRIMARY KEY NOT NULL,
    created_at           INTEGER NOT NULL,
    status               TEXT NOT NULL,
    background           INTEGER NOT NULL,
    previous_response_id TEXT,
    -- The final response object as JSON, written with the terminal event.
    snapshot             TEXT
);

CREATE INDEX responses_unfinished ON responses (status)
    WHERE status IN ('queued', 'in_progress');

-- Input items as the request gave them (normalized) and output items as the
-- run produced them, in order.
CREATE TABLE items (
    response_id TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('input', 'output')),
    position    INTEGER NOT NULL,
    item_id     TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (response_id, kind, position)
) WITHOUT ROWID;

CREATE INDEX items_by_item_id ON items (response_id, kind, item_id);

-- The append-only log: one row per canonical event.
CREATE TABLE events (
    response_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    ts_ms       INTEGER NOT NULL,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (response_id, seq)
) WITHOUT ROWID;
