-- Named agents: definitions from the config file (and, later, the Agents API).
CREATE TABLE agents (
    name       TEXT PRIMARY KEY NOT NULL,
    -- The definition as JSON.
    definition TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
