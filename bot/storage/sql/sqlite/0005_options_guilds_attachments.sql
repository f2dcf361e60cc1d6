-- 5: per-channel options, guild ids, and attachments (their records and their bytes).
--
-- channel_options: one row per option a channel sets itself (text; what each name means is
-- declared in bot/channels.py); unset means inherited from the parent, else the default.
-- channels and turns gain the guild id (NULL in DMs).
-- messages.attachments: a JSON array of the message's attachment records (NULL when none).
-- blobs: an image's bytes, once per SHA-256 digest however often it is sent; message_blobs: which
-- messages refer to which blob. Deleting a message (reset, a forgotten question, a deleted turn)
-- deletes its message_blobs rows (ON DELETE CASCADE), and the trigger blobs_unreferenced then
-- deletes every blob no message refers to any more (one indexed look-up per row deleted).
--
-- turn_writes (from 4) is made again with the new columns. A turn is still one INSERT: its first
-- row is the turn (no blob_sha256), and one row follows per blob the question refers to (only
-- blob_* set): turn_writes_blob stores the bytes (unless that digest is stored already, or the
-- row brings none) and links the blob to the question just written (the newest user message:
-- the statement holds the write lock). A blob that is neither brought nor stored fails the
-- foreign key, and the whole statement (the turn included) is undone.
ALTER TABLE channels ADD COLUMN guild_id INTEGER;
ALTER TABLE turns ADD COLUMN guild_id INTEGER;
ALTER TABLE messages ADD COLUMN attachments TEXT;
CREATE TABLE channel_options (
    channel_id INTEGER NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT NOT NULL,
    guild_id   INTEGER,
    set_at     REAL NOT NULL,
    PRIMARY KEY (channel_id, name)
) WITHOUT ROWID;
CREATE INDEX channel_options_by_value ON channel_options (name, value);
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL,
    data       BLOB NOT NULL
);
CREATE TABLE message_blobs (
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL REFERENCES blobs (sha256),
    PRIMARY KEY (message_id, sha256)
) WITHOUT ROWID;
CREATE INDEX message_blobs_by_sha256 ON message_blobs (sha256);
CREATE TRIGGER blobs_unreferenced AFTER DELETE ON message_blobs
BEGIN
    DELETE FROM blobs WHERE sha256 = OLD.sha256
        AND NOT EXISTS (SELECT 1 FROM message_blobs WHERE sha256 = OLD.sha256);
END;
DROP VIEW turn_writes;
CREATE VIEW turn_writes AS SELECT
    t.channel_id, t.guild_id, t.user_id, t.model, t.prompt_tokens, t.completion_tokens,
    t.created_at, t.question_message_id,
    q.role AS question_role, q.author_name AS question_author_name,
    q.content AS question_content,
    q.tokens AS question_tokens, q.tokens_bound AS question_tokens_bound,
    q.attachments AS question_attachments,
    a.role AS answer_role, a.author_id AS answer_author_id,
    a.author_name AS answer_author_name, a.content AS answer_content,
    a.tokens AS answer_tokens, a.tokens_bound AS answer_tokens_bound,
    a.attachments AS answer_attachments,
    b.sha256 AS blob_sha256, b.media_type AS blob_media_type, b.size AS blob_size,
    b.data AS blob_data
    FROM turns AS t, messages AS q, messages AS a, blobs AS b WHERE 0;
CREATE TRIGGER turn_writes_insert INSTEAD OF INSERT ON turn_writes
    WHEN NEW.blob_sha256 IS NULL
BEGIN
    INSERT INTO turns (channel_id, guild_id, user_id, model, prompt_tokens, completion_tokens,
                       created_at, question_message_id)
        VALUES (NEW.channel_id, NEW.guild_id, NEW.user_id, NEW.model, NEW.prompt_tokens,
                NEW.completion_tokens, NEW.created_at, NEW.question_message_id);
    INSERT INTO messages (channel_id, turn_id, role, author_id, author_name, content,
                          tokens, tokens_bound, attachments, created_at)
        VALUES (NEW.channel_id, last_insert_rowid(), NEW.question_role, NEW.user_id,
                NEW.question_author_name, NEW.question_content, NEW.question_tokens,
                NEW.question_tokens_bound, NEW.question_attachments, NEW.created_at);
    INSERT INTO messages (channel_id, turn_id, role, author_id, author_name, content,
                          tokens, tokens_bound, attachments, created_at)
        SELECT NEW.channel_id, turn_id, NEW.answer_role, NEW.answer_author_id,
               NEW.answer_author_name, NEW.answer_content, NEW.answer_tokens,
               NEW.answer_tokens_bound, NEW.answer_attachments, NEW.created_at
        FROM messages WHERE id = last_insert_rowid();
END;
CREATE TRIGGER turn_writes_blob INSTEAD OF INSERT ON turn_writes
    WHEN NEW.blob_sha256 IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO blobs (sha256, media_type, size, data)
        SELECT NEW.blob_sha256, NEW.blob_media_type, NEW.blob_size, NEW.blob_data
        WHERE NEW.blob_data IS NOT NULL;
    INSERT INTO message_blobs (message_id, sha256)
        SELECT id, NEW.blob_sha256 FROM messages WHERE role = 'user' ORDER BY id DESC LIMIT 1;
END;
