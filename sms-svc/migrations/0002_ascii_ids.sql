-- The ids and words smsops looks messages up by are ASCII: its own UUIDs,
-- statuses and provider names, and providers' message ids (sms-svc keeps no
-- other). Under utf8mb4 every key lookup and index insert compared them
-- through the Unicode collation tables, about a sixth of MariaDB's CPU in
-- bench-sms. (A binary collation would be cheaper still, but sqlx then
-- reads the columns as bytes, not text.) Ids from callers keep utf8mb4.
ALTER TABLE sms_messages
    MODIFY id CHAR(36) CHARACTER SET ascii NOT NULL,
    MODIFY status VARCHAR(16) CHARACTER SET ascii NOT NULL,
    MODIFY provider VARCHAR(32) CHARACTER SET ascii NOT NULL,
    MODIFY provider_sid VARCHAR(64) CHARACTER SET ascii NULL;

ALTER TABLE sms_status_history
    MODIFY message_id CHAR(36) CHARACTER SET ascii NOT NULL,
    MODIFY status VARCHAR(16) CHARACTER SET ascii NOT NULL;

ALTER TABLE sms_outbox
    MODIFY event_id CHAR(36) CHARACTER SET ascii NOT NULL;
