-- One row per pair per minute, as seed 001's `sms_metrics` (id, country,
-- operator, sms_sent, success_rate, failures, timestamp), plus what computing
-- it exactly needs: the pair and the count of each final status.
CREATE TABLE IF NOT EXISTS sms_metrics (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    country VARCHAR(10) NOT NULL,
    operator VARCHAR(50) NOT NULL,
    sms_sent INT UNSIGNED NOT NULL DEFAULT 0,
    success_rate FLOAT NOT NULL DEFAULT 0,
    failures INT UNSIGNED NOT NULL DEFAULT 0,
    `timestamp` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    pair_id VARCHAR(64) NOT NULL,
    delivered INT UNSIGNED NOT NULL DEFAULT 0,
    undelivered INT UNSIGNED NOT NULL DEFAULT 0,
    failed INT UNSIGNED NOT NULL DEFAULT 0,
    UNIQUE KEY metrics_pair_minute (pair_id, `timestamp`),
    KEY metrics_minute (`timestamp`)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Every event counted, so a redelivered one is not counted again. Written
-- in the same transaction as the counts it changed.
CREATE TABLE IF NOT EXISTS processed_events (
    event_id CHAR(36) NOT NULL PRIMARY KEY,
    processed_at DATETIME(6) NOT NULL
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
