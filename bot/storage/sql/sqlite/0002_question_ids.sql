-- 2: the Discord id of each turn's question (to forget a deleted question), and the user
-- rows' token counts raised to the JSON speaker framing (they were counted for `[Name]: `).
-- chatlab_legacy_framing_tokens is a Python function the store registers before migrating.
ALTER TABLE turns ADD COLUMN question_message_id INTEGER;
CREATE INDEX turns_by_question ON turns (channel_id, question_message_id);
UPDATE messages SET tokens = tokens + chatlab_legacy_framing_tokens(content, author_name)
    WHERE role = 'user';
