-- Outcomes whose status came from sms-svc's receipt reconciliation, not a
-- status callback: the receipt_gap rule is their share of the finished.
-- A trailing column with a default: MariaDB adds it without copying.
ALTER TABLE pair_outcomes ADD COLUMN reconciled INT NOT NULL DEFAULT 0;
