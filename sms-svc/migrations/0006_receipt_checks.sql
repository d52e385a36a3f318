-- Messages whose receipt is late and that reconciliation has looked up at
-- their provider: how often, and when to look again. A row of its own, not
-- columns of sms_messages: only late messages ever have one, and the hot
-- path's statements stay as they are. Rows of messages that have become
-- final are deleted by the reconciler.
CREATE TABLE sms_receipt_checks (
    message_id CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY,
    checks INT UNSIGNED NOT NULL,
    next_at DATETIME(6) NOT NULL,
    last_error VARCHAR(255) NULL,
    KEY receipt_checks_due (next_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
