-- Messages reserved against each quota, per window: a user's minute and
-- day, and each provider account's day. Every sms-svc replica reserves
-- here, in one transaction per batch, so a quota holds across replicas.
CREATE TABLE quota_usage (
    subject VARCHAR(100) NOT NULL,
    -- 'm': the minute starting at window_start; 'd': the UTC day.
    period CHAR(1) NOT NULL,
    window_start DATETIME NOT NULL,
    used BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (subject, period, window_start),
    KEY quota_usage_window (window_start)
);
