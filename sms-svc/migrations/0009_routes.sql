-- Why a message went to its provider account (route, weighted, failover_...);
-- NULL for messages older than routes.
ALTER TABLE sms_messages ADD COLUMN route_reason VARCHAR(32) CHARACTER SET ascii NULL AFTER provider;

-- Each provider account's send schedule, shared by every replica: the
-- first turn not yet booked, in microseconds of the server's clock (so the
-- replicas' own clocks never matter).
CREATE TABLE sms_provider_pace (
    provider VARCHAR(32) CHARACTER SET ascii NOT NULL PRIMARY KEY,
    next_at BIGINT NOT NULL
) ENGINE = InnoDB;
