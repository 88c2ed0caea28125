-- Per-message delivery state (issue 12): a message that failed waits for its own next_attempt_at
-- (a backoff with jitter, or the receiver's Retry-After), so a run takes only messages that are
-- due and poison never blocks the rest; one refused for good dead_after_refusals times becomes a
-- dead letter (dead_at), kept and never tried again unless retried by hand.
ALTER TABLE messages
    ADD COLUMN failed_tries    integer NOT NULL DEFAULT 0 CHECK (failed_tries >= 0),
    ADD COLUMN refusals        integer NOT NULL DEFAULT 0 CHECK (refusals >= 0),
    ADD COLUMN next_attempt_at timestamptz,
    ADD COLUMN dead_at         timestamptz,
    ADD COLUMN last_status     text CHECK (last_status IN ('success', 'failed', 'error', 'timeout'));

-- The last status of the messages sent before this migration, from their kept responses.
UPDATE messages m SET last_status = r.status
FROM (SELECT DISTINCT ON (message_id) message_id, status FROM responses
      ORDER BY message_id, received_at DESC, id DESC) r
WHERE r.message_id = m.id;

DROP INDEX messages_unsent;
CREATE INDEX messages_unsent ON messages (priority DESC, created_at)
    WHERE sent_at IS NULL AND dead_at IS NULL;
CREATE INDEX messages_dead ON messages (dead_at) WHERE dead_at IS NOT NULL;
