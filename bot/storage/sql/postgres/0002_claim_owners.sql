-- 2: who holds each claim. A process holds an advisory lock (PRESENCE_CLASS, owner) for its
-- life; a claim whose owner no longer holds it (the process died) and whose turn was not stored
-- (owner still set: storing the turn clears it) may be taken over by a re-delivery.
ALTER TABLE claims ADD COLUMN owner INTEGER;
