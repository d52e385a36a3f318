-- Retention deletes counted events by age (SMSOPS_METRICS_DEDUPE_SECS): the
-- table had no index to find them by. InnoDB adds it online.
ALTER TABLE processed_events ADD KEY processed_at (processed_at);
