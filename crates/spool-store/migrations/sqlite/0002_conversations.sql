-- Conversations: durable lists of items that responses read as history and
-- append their input and output to.

CREATE TABLE conversations (
    id                 TEXT PRIMARY KEY NOT NULL,
    created_at         INTEGER NOT NULL,
    -- A JSON object of string pairs.
    metadata           TEXT NOT NULL,
    -- The response running on the conversation, if any: one at a time, so
    -- two turns never interleave their items.
    active_response_id TEXT
);

CREATE TABLE conversation_items (
    conversation_id TEXT NOT NULL,
    position        INTEGER NOT NULL,
    item_id         TEXT NOT NULL,
    body            TEXT NOT NULL,
    PRIMARY KEY (conversation_id, position)
) WITHOUT ROWID;

CREATE INDEX conversation_items_by_item_id ON conversation_items (conversation_id, item_id);

ALTER TABLE responses ADD COLUMN conversation_id TEXT;
