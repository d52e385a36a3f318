//! A message sent in parts, as SMPP sends one too long for a single SMS:
//! the provider knows each part by an id of its own and sends each part a
//! receipt of its own. The message takes one final status, once every part
//! has one.

use super::{Change, Status};

/// One part of a message, as its receipt left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub message_id: String,
    /// The provider's id for this part.
    pub sid: String,
    /// 1 for the first part.
    pub number: u32,
    /// Final once its receipt came; `None` until then.
    pub status: Option<Status>,
    pub error_code: Option<String>,
}

impl Part {
    /// The parts of a message the provider took, in order, none final.
    pub fn all_of(message_id: &str, sids: &[String]) -> Vec<Part> {
        sids.iter()
            .zip(1..)
            .map(|(sid, number)| Part {
                message_id: message_id.to_string(),
                sid: sid.clone(),
                number,
                status: None,
                error_code: None,
            })
            .collect()
    }

    /// Records a receipt; a part's first final status is the one kept, as
    /// a message's is. Says whether it changed the part.
    pub fn receipt(&mut self, change: &Change) -> bool {
        if self.status.is_some() || !change.status.is_final() {
            return false;
        }
        self.status = Some(change.status);
        self.error_code.clone_from(&change.error_code);
        true
    }
}

/// The message's one final status once every part has one: delivered
/// when every part was; otherwise the worst part's (failed over
/// undelivered), with that part's error. `None` while a part is open.
pub fn combined(parts: &[&Part]) -> Option<Change> {
    let statuses: Vec<Status> = parts
        .iter()
        .map(|part| part.status)
        .collect::<Option<_>>()?;
    let delivered = statuses.iter().filter(|s| **s == Status::Delivered).count();
    let worst = [Status::Failed, Status::Undelivered]
        .into_iter()
        .find_map(|bad| parts.iter().find(|part| part.status == Some(bad)));
    let provider_status = format!("{delivered}/{} parts delivered", parts.len());
    Some(match worst {
        None => Change {
            status: Status::Delivered,
            provider_sid: None,
            provider_status: Some(provider_status),
            error_code: None,
            error_message: None,
            parts: Vec::new(),
            routed: None,
        },
        Some(part) => Change {
            status: part.status.unwrap_or(Status::Undelivered),
            provider_sid: None,
            provider_status: Some(provider_status),
            error_code: part.error_code.clone(),
            error_message: Some(format!(
                "part {} of {} was not delivered",
                part.number,
                parts.len()
            )),
            parts: Vec::new(),
            routed: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(status: Status, code: Option<&str>) -> Change {
        Change {
            status,
            provider_sid: None,
            provider_status: None,
            error_code: code.map(String::from),
            error_message: None,
            parts: Vec::new(),
            routed: None,
        }
    }

    fn parts(n: usize) -> Vec<Part> {
        let sids: Vec<String> = (1..=n).map(|i| format!("p{i}")).collect();
        Part::all_of("m1", &sids)
    }

    #[test]
    fn a_message_is_final_once_every_part_is() {
        let mut all = parts(3);
        assert!(all[0].receipt(&receipt(Status::Delivered, None)));
        assert!(all[2].receipt(&receipt(Status::Delivered, None)));
        assert_eq!(combined(&all.iter().collect::<Vec<_>>()), None);
        assert!(all[1].receipt(&receipt(Status::Delivered, None)));
        let change = combined(&all.iter().collect::<Vec<_>>()).expect("final");
        assert_eq!(change.status, Status::Delivered);
        assert_eq!(
            change.provider_status.as_deref(),
            Some("3/3 parts delivered")
        );
    }

    #[test]
    fn one_bad_part_makes_the_message_bad_failed_first() {
        let mut all = parts(3);
        all[0].receipt(&receipt(Status::Undelivered, Some("smpp_err_1")));
        all[1].receipt(&receipt(Status::Failed, Some("smpp_err_2")));
        all[2].receipt(&receipt(Status::Delivered, None));
        let change = combined(&all.iter().collect::<Vec<_>>()).expect("final");
        assert_eq!(change.status, Status::Failed);
        assert_eq!(change.error_code.as_deref(), Some("smpp_err_2"));
        assert_eq!(
            change.provider_status.as_deref(),
            Some("1/3 parts delivered")
        );
    }

    #[test]
    fn a_part_keeps_its_first_final_status_and_ignores_progress() {
        let mut all = parts(1);
        assert!(!all[0].receipt(&receipt(Status::Sent, None)));
        assert!(all[0].receipt(&receipt(Status::Undelivered, None)));
        assert!(!all[0].receipt(&receipt(Status::Delivered, None)));
        assert_eq!(all[0].status, Some(Status::Undelivered));
    }
}
