-- Delivered messages per pair, 5-second bucket and latency bin
-- (smsops_common::latency): the slow_delivery rule's percentiles are sums
-- of these over its window.
CREATE TABLE pair_latency (
    pair_id VARCHAR(64) NOT NULL,
    bucket_at DATETIME NOT NULL,
    bin SMALLINT UNSIGNED NOT NULL,
    count INT NOT NULL DEFAULT 0,
    PRIMARY KEY (pair_id, bucket_at, bin),
    KEY bucket_at (bucket_at)
);
