-- The responses run on a conversation, in the order they were created: a
-- thread's turns (the Codex dialect) are listed from it.
CREATE INDEX responses_by_conversation ON responses (conversation_id)
    WHERE conversation_id IS NOT NULL;
