-- The whole schema of a PostgreSQL store: the log and the records it is
-- served from, conversations, named agents, and the leases of the
-- instances that execute runs. Tables live in the connection's current
-- schema (its search_path), so one database can hold several deployments.

-- One row per response. `status` mirrors the log (updated as the run starts
-- and ends) so unfinished runs are found without reading logs.
CREATE TABLE responses (
    id                   TEXT PRIMARY KEY,
    -- Creation order: listings page by it (ids are unique, not ordered).
    ord                  BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    created_at           BIGINT NOT NULL,
    status               TEXT NOT NULL,
    background           BOOLEAN NOT NULL,
    previous_response_id TEXT,
    conversation_id      TEXT,
    -- The instance executing the run (see `instances`).
    executor             TEXT,
    -- The final response object as JSON, written with the terminal event.
    snapshot             TEXT
);

CREATE INDEX responses_unfinished ON responses (executor)
    WHERE status IN ('queued', 'in_progress');
CREATE INDEX responses_by_conversation ON responses (conversation_id, ord)
    WHERE conversation_id IS NOT NULL;

-- Input items as the request gave them and output items as the run
-- produced them, in order.
CREATE TABLE items (
    response_id TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('input', 'output')),
    position    BIGINT NOT NULL,
    item_id     TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (response_id, kind, position)
);

CREATE INDEX items_by_item_id ON items (response_id, kind, item_id);

-- The append-only log: one row per canonical event. The primary key is
-- what keeps a log dense and single-writer: a second writer of the same
-- position is refused, never interleaved.
CREATE TABLE events (
    response_id TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    ts_ms       BIGINT NOT NULL,
    type        TEXT NOT NULL,
    payload     TEXT NOT NULL,
    PRIMARY KEY (response_id, seq)
);

CREATE TABLE conversations (
    id                 TEXT PRIMARY KEY,
    ord                BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    created_at         BIGINT NOT NULL,
    -- A JSON object of string pairs.
    metadata           TEXT NOT NULL,
    -- The response running on the conversation, if any, and the instance
    -- that claimed it: one at a time, so two turns never interleave.
    active_response_id TEXT,
    claimed_by         TEXT,
    -- The position the next appended item takes. Appends take positions by
    -- updating this under the row's lock, so concurrent writers on any
    -- instance get dense, distinct positions (no MAX(position) + 1 race).
    next_position      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE conversation_items (
    conversation_id TEXT NOT NULL,
    position        BIGINT NOT NULL,
    item_id         TEXT NOT NULL,
    body            TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
);

CREATE INDEX conversation_items_by_item_id ON conversation_items (conversation_id, item_id);

CREATE TABLE agents (
    name       TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row per running instance: it renews `lease_until` while it lives.
-- Runs whose executor's lease has run out were lost with it.
CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    lease_until BIGINT NOT NULL
);
