-- Agents created through the llama-stack Agents API (not the operator's
-- named agents of 0003, which the config file owns and prunes): the agent
-- config as the caller sent it, and the sessions each agent has. A
-- session's turns are runs on its conversation.
CREATE TABLE api_agents (
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    -- The agent config as JSON.
    config     TEXT NOT NULL,
    -- Unix milliseconds.
    created_at INTEGER NOT NULL
);

CREATE TABLE api_agent_sessions (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL UNIQUE,
    agent_id        TEXT NOT NULL,
    name            TEXT NOT NULL,
    -- Unix milliseconds.
    created_at      INTEGER NOT NULL
);

CREATE INDEX api_agent_sessions_by_agent ON api_agent_sessions (agent_id, position);
