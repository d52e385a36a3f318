-- How often each error code ended a message, per pair per minute, for the
-- summary's top errors.
CREATE TABLE IF NOT EXISTS sms_error_counts (
    pair_id VARCHAR(64) NOT NULL,
    `timestamp` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    error_code VARCHAR(64) NOT NULL,
    count INT UNSIGNED NOT NULL,
    PRIMARY KEY (pair_id, `timestamp`, error_code),
    KEY errors_minute (`timestamp`)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
