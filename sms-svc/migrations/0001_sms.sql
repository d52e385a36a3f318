-- Every message, one row, whatever its provider; the body itself is not kept.
CREATE TABLE IF NOT EXISTS sms_messages (
    id CHAR(36) NOT NULL PRIMARY KEY,
    idempotency_key VARCHAR(128) NULL,
    pair_id VARCHAR(64) NOT NULL,
    country VARCHAR(10) NOT NULL,
    operator VARCHAR(50) NOT NULL,
    is_high_priority BOOLEAN NOT NULL,
    session_id VARCHAR(64) NULL,
    to_number VARCHAR(16) NOT NULL,
    body_length INT UNSIGNED NOT NULL,
    segments INT UNSIGNED NOT NULL,
    status VARCHAR(16) NOT NULL,
    status_rank TINYINT UNSIGNED NOT NULL,
    provider VARCHAR(32) NOT NULL,
    provider_sid VARCHAR(64) NULL,
    error_code VARCHAR(64) NULL,
    error_message VARCHAR(255) NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    UNIQUE KEY sms_idempotency (idempotency_key),
    UNIQUE KEY sms_provider_sid (provider, provider_sid),
    KEY sms_pair_created (pair_id, created_at),
    KEY sms_session (session_id),
    KEY sms_status_created (status, created_at),
    KEY sms_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Every status a message moved to, in order.
CREATE TABLE IF NOT EXISTS sms_status_history (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    message_id CHAR(36) NOT NULL,
    status VARCHAR(16) NOT NULL,
    error_code VARCHAR(64) NULL,
    provider_status VARCHAR(32) NULL,
    occurred_at DATETIME(6) NOT NULL,
    KEY history_message (message_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Events written in the same transaction as the change they describe; the
-- relay publishes them with confirms and deletes them only after the confirm.
CREATE TABLE IF NOT EXISTS sms_outbox (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id CHAR(36) NOT NULL,
    routing_key VARCHAR(64) NOT NULL,
    event_type VARCHAR(64) NOT NULL,
    traceparent VARCHAR(64) NOT NULL,
    payload LONGTEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    UNIQUE KEY outbox_event (event_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
