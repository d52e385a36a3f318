-- Events already taken into account, so a redelivery changes nothing.
CREATE TABLE processed_events (
    event_id VARCHAR(36) NOT NULL PRIMARY KEY,
    processed_at DATETIME(6) NOT NULL,
    KEY processed_at (processed_at)
);

-- Finished messages per pair per 5-second bucket: the sliding windows of
-- the success-rate rule are sums over these.
CREATE TABLE pair_outcomes (
    pair_id VARCHAR(64) NOT NULL,
    bucket_at DATETIME NOT NULL,
    country VARCHAR(10) NOT NULL,
    operator VARCHAR(50) NOT NULL,
    is_high_priority BOOLEAN NOT NULL,
    delivered INT NOT NULL DEFAULT 0,
    undelivered INT NOT NULL DEFAULT 0,
    failed INT NOT NULL DEFAULT 0,
    PRIMARY KEY (pair_id, bucket_at),
    KEY bucket_at (bucket_at)
);

-- Undelivered and failed messages per pair, error code and bucket, for the
-- failure-burst rule.
CREATE TABLE pair_errors (
    pair_id VARCHAR(64) NOT NULL,
    bucket_at DATETIME NOT NULL,
    error_code VARCHAR(64) NOT NULL,
    count INT NOT NULL DEFAULT 0,
    PRIMARY KEY (pair_id, bucket_at, error_code),
    KEY bucket_at (bucket_at)
);

-- Alert history. `open_key` is "rule|pair" while the alert is open and NULL
-- after: the unique key is what keeps one open alert per rule and pair,
-- whichever replica tries to open a second.
CREATE TABLE alerts (
    id VARCHAR(36) NOT NULL PRIMARY KEY,
    rule VARCHAR(32) NOT NULL,
    pair_id VARCHAR(64) NULL,
    country VARCHAR(10) NULL,
    operator VARCHAR(50) NULL,
    state VARCHAR(16) NOT NULL,
    open_key VARCHAR(128) NULL,
    opened_at DATETIME(6) NOT NULL,
    resolved_at DATETIME(6) NULL,
    message TEXT NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    UNIQUE KEY open_key (open_key),
    KEY rule_pair (rule, pair_id, resolved_at),
    KEY updated_at (updated_at)
);

-- One Telegram message per alert change and chat, written with the change:
-- the sender delivers it, retrying until Telegram takes it.
CREATE TABLE notifications (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    alert_id VARCHAR(36) NOT NULL,
    chat_id VARCHAR(64) NOT NULL,
    text TEXT NOT NULL,
    status VARCHAR(16) NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    last_error VARCHAR(255) NULL,
    next_attempt_at DATETIME(6) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    sent_at DATETIME(6) NULL,
    KEY due (status, next_attempt_at),
    KEY alert_id (alert_id)
);

-- The alert rules, one row, so every replica reads the same.
CREATE TABLE rules (
    id TINYINT NOT NULL PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    updated_by VARCHAR(64) NOT NULL
);
