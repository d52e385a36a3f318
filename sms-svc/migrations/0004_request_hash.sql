-- What a message was asked with (pair, number, body), hashed: a repeat of
-- its idempotency key with anything else is refused, not answered with this
-- message. NULL for messages from before; MariaDB adds a trailing nullable
-- column in place, without copying the table.
ALTER TABLE sms_messages ADD COLUMN request_hash CHAR(43) NULL;
