-- A message reaches each status at most once (statuses only move forward).
-- The key says so, and lets a multi-row insert repeat a row harmlessly, so
-- its statement comes in a few sizes only (see `padded` in store.rs). It
-- also serves the history read (a message's few rows, ordered by id), so
-- the old index would only be one more to maintain per status change.
ALTER TABLE sms_status_history
    ADD UNIQUE KEY history_status (message_id, status),
    DROP KEY history_message;
