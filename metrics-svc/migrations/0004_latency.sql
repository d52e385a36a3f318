-- How long messages took from acceptance to sent (step 1) and to delivered
-- (step 2), per pair and minute, as counts per latency bin
-- (smsops_common::latency): bins add up, so any window's percentiles are
-- sums over these rows.
CREATE TABLE IF NOT EXISTS sms_latency (
    pair_id VARCHAR(64) NOT NULL,
    `timestamp` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    step TINYINT UNSIGNED NOT NULL,
    bin SMALLINT UNSIGNED NOT NULL,
    count INT UNSIGNED NOT NULL,
    PRIMARY KEY (pair_id, `timestamp`, step, bin),
    KEY latency_minute (`timestamp`)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
