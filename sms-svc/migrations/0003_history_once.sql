-- A message reaches each status at most once (statuses only move forward).
-- The key says so, and lets a multi-row insert repeat a row harmlessly, so
-- its statement comes in a few sizes only (see `padded` in store.rs).
ALTER TABLE sms_status_history
    ADD UNIQUE KEY history_status (message_id, status);
