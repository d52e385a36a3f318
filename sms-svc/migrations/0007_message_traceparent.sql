-- The W3C trace context of the request that accepted a message, so the
-- events of its later statuses (the provider's answer, its receipt) join
-- that request's trace. NULL while traces are off. A trailing nullable
-- column: MariaDB adds it in place, without copying the table.
ALTER TABLE sms_messages ADD COLUMN traceparent VARCHAR(64) NULL;
