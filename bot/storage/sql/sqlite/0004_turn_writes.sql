-- 4: a whole turn in one statement (one trip to the database thread instead of four). The
-- view has no rows; inserting into it runs the trigger, which writes the turn, then its
-- question (whose turn is the row just inserted), then its answer (the question's turn).
-- A failure anywhere undoes the whole statement. And whether a message's `tokens` is a
-- bound (its UTF-8 length, when no vocabulary had been loaded to count it) rather than a
-- count; rows stored before were counted.
ALTER TABLE messages ADD COLUMN tokens_bound INTEGER NOT NULL DEFAULT 0;
CREATE VIEW turn_writes AS SELECT
    t.channel_id, t.user_id, t.model, t.prompt_tokens, t.completion_tokens, t.created_at,
    t.question_message_id,
    q.role AS question_role, q.author_name AS question_author_name,
    q.content AS question_content,
    q.tokens AS question_tokens, q.tokens_bound AS question_tokens_bound,
    a.role AS answer_role, a.author_id AS answer_author_id,
    a.author_name AS answer_author_name, a.content AS answer_content,
    a.tokens AS answer_tokens, a.tokens_bound AS answer_tokens_bound
    FROM turns AS t, messages AS q, messages AS a WHERE 0;
CREATE TRIGGER turn_writes_insert INSTEAD OF INSERT ON turn_writes
BEGIN
    INSERT INTO turns (channel_id, user_id, model, prompt_tokens, completion_tokens,
                       created_at, question_message_id)
        VALUES (NEW.channel_id, NEW.user_id, NEW.model, NEW.prompt_tokens,
                NEW.completion_tokens, NEW.created_at, NEW.question_message_id);
    INSERT INTO messages (channel_id, turn_id, role, author_id, author_name, content,
                          tokens, tokens_bound, created_at)
        VALUES (NEW.channel_id, last_insert_rowid(), NEW.question_role, NEW.user_id,
                NEW.question_author_name, NEW.question_content, NEW.question_tokens,
                NEW.question_tokens_bound, NEW.created_at);
    INSERT INTO messages (channel_id, turn_id, role, author_id, author_name, content,
                          tokens, tokens_bound, created_at)
        SELECT NEW.channel_id, turn_id, NEW.answer_role, NEW.answer_author_id,
               NEW.answer_author_name, NEW.answer_content, NEW.answer_tokens,
               NEW.answer_tokens_bound, NEW.created_at
        FROM messages WHERE id = last_insert_rowid();
END;
