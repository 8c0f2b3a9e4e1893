-- Agents created through the llama-stack Agents API (not the operator's
-- named agents, which the config file owns and prunes) and their
-- sessions. A session's turns are runs on its conversation.
CREATE TABLE api_agents (
    id         TEXT PRIMARY KEY,
    -- Creation order: listings page by it.
    ord        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    -- The agent config as JSON.
    config     TEXT NOT NULL,
    -- Unix milliseconds.
    created_at BIGINT NOT NULL
);

CREATE TABLE api_agent_sessions (
    conversation_id TEXT PRIMARY KEY,
    ord             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    agent_id        TEXT NOT NULL,
    name            TEXT NOT NULL,
    -- Unix milliseconds.
    created_at      BIGINT NOT NULL
);

CREATE INDEX api_agent_sessions_by_agent ON api_agent_sessions (agent_id, ord);
