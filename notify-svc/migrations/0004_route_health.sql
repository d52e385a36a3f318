-- Finished messages per pair, provider account and 5-second bucket: the
-- route_health rule's delivered shares are sums of these over its window.
CREATE TABLE provider_outcomes (
    pair_id VARCHAR(64) NOT NULL,
    provider VARCHAR(32) NOT NULL,
    bucket_at DATETIME NOT NULL,
    delivered INT NOT NULL DEFAULT 0,
    finished INT NOT NULL DEFAULT 0,
    PRIMARY KEY (pair_id, provider, bucket_at),
    KEY bucket_at (bucket_at)
);

-- The provider a route_health alert is about; its open_key is
-- "route_health|pair|provider", so each route has one open alert.
-- A trailing nullable column: MariaDB adds it without copying.
ALTER TABLE alerts ADD COLUMN provider VARCHAR(32) NULL;
