//! One status model for every provider.

use std::fmt;

/// Where a message is. Statuses only move forward: a late `sent` never
/// overwrites `delivered`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Recorded by smsops, not yet taken by the provider.
    Accepted,
    /// Taken by the provider.
    Queued,
    /// Handed to the carrier.
    Sent,
    Delivered,
    Undelivered,
    Failed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::Accepted,
        Status::Queued,
        Status::Sent,
        Status::Delivered,
        Status::Undelivered,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Queued => "queued",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Undelivered => "undelivered",
            Status::Failed => "failed",
        }
    }

    /// Order of progress; the three final statuses share the last rank.
    pub fn rank(self) -> u8 {
        match self {
            Status::Accepted => 0,
            Status::Queued => 1,
            Status::Sent => 2,
            Status::Delivered | Status::Undelivered | Status::Failed => 3,
        }
    }

    pub fn is_final(self) -> bool {
        self.rank() == 3
    }

    pub fn parse(value: &str) -> Option<Status> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_back_and_only_move_forward() {
        for status in Status::ALL {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert!(Status::Sent.rank() < Status::Delivered.rank());
        assert_eq!(Status::Delivered.rank(), Status::Failed.rank());
        assert_eq!(Status::parse("read"), None);
    }
}
