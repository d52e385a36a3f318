-- The parts of messages sent in several (SMPP): the provider's id for each
-- and the status its receipt brought. A message takes one final status once
-- every part has one, whichever replica's bind each receipt arrived on, so
-- the parts live here rather than in a replica's memory. Single-part SMPP
-- messages have one row, so every SMPP receipt is looked up the same way.
CREATE TABLE sms_parts (
    provider VARCHAR(32) CHARACTER SET ascii NOT NULL,
    part_sid VARCHAR(64) CHARACTER SET ascii NOT NULL,
    message_id CHAR(36) CHARACTER SET ascii NOT NULL,
    part_number SMALLINT UNSIGNED NOT NULL,
    status VARCHAR(16) CHARACTER SET ascii NULL,
    error_code VARCHAR(64) NULL,
    PRIMARY KEY (provider, part_sid),
    KEY parts_message (message_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
