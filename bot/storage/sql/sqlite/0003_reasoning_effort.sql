-- 3: a channel's reasoning effort (for models that take one), inherited like its model.
ALTER TABLE channels ADD COLUMN reasoning_effort TEXT;
