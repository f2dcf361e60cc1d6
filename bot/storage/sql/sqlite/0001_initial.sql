-- 1: channels (prompt, model), prompt changes, turns, messages, meta.
CREATE TABLE channels (
    channel_id         INTEGER PRIMARY KEY,
    system_prompt      TEXT,
    prompt_set_by_id   INTEGER,
    prompt_set_by_name TEXT,
    prompt_set_at      REAL,
    model              TEXT
);
CREATE TABLE prompt_changes (
    id          INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL,
    prompt      TEXT,
    set_by_id   INTEGER,
    set_by_name TEXT,
    set_at      REAL NOT NULL
);
CREATE INDEX prompt_changes_by_channel ON prompt_changes (channel_id, id);
CREATE TABLE turns (
    id                INTEGER PRIMARY KEY,
    channel_id        INTEGER NOT NULL,
    user_id           INTEGER,
    model             TEXT NOT NULL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    created_at        REAL NOT NULL
);
CREATE INDEX turns_by_channel ON turns (channel_id);
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    channel_id  INTEGER NOT NULL,
    turn_id     INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
    role        TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    author_id   INTEGER,
    author_name TEXT,
    content     TEXT NOT NULL,
    tokens      INTEGER NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX messages_by_channel ON messages (channel_id, id);
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
