//! Who may stop or restart a session. Checked here, in process-svc's core,
//! and not only by the gateway: a caller that reaches process-svc's gRPC
//! port directly gains nothing.
//!
//! What process-svc does on its own (finishing at a limit, failing, taking
//! a dead replica's session over) never comes through here: the runner
//! acts under its lease, not as a caller.

use smsops_common::auth::Caller;

use super::ProcessError;
use crate::store::SessionDoc;

/// What a caller asks of someone's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Stop,
    Restart,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Stop => "stop",
            Action::Restart => "restart",
        }
    }
}

/// The caller as far as access goes.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user_id: &'a str,
    pub is_admin: bool,
}

impl<'a> From<&'a Caller> for Actor<'a> {
    fn from(caller: &'a Caller) -> Self {
        Self {
            user_id: &caller.user_id,
            is_admin: caller.is_admin(),
        }
    }
}

/// The facts about a session that decide who may act on it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub id: &'a str,
    pub pair_id: &'a str,
    /// The user who created it; restarts keep it, so the owner stays the
    /// owner whoever restarted the session since.
    pub started_by: &'a str,
    pub is_high_priority: bool,
}

impl<'a> From<&'a SessionDoc> for Target<'a> {
    fn from(session: &'a SessionDoc) -> Self {
        Self {
            id: &session.id,
            pair_id: &session.pair_id,
            started_by: &session.started_by,
            is_high_priority: session.is_high_priority,
        }
    }
}

/// What the audit records of a granted action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// An admin overrode a high-priority pair's pin.
    pub forced: bool,
}

impl Actor<'_> {
    /// The one rule for stopping and restarting: a session is its
    /// starter's, and an admin's; a high-priority pair's session is an
    /// admin's alone, and only with `force`. A session whose starter was
    /// deleted is thereby an admin's alone.
    pub fn may(
        &self,
        action: Action,
        target: Target<'_>,
        force: bool,
    ) -> Result<Grant, ProcessError> {
        let verb = action.verb();
        let owns = !target.started_by.is_empty() && target.started_by == self.user_id;
        if !owns && !self.is_admin {
            return Err(ProcessError::Forbidden(format!(
                "session {} was started by another user: only that user or an admin may {verb} it",
                target.id
            )));
        }
        if !target.is_high_priority {
            return Ok(Grant { forced: false });
        }
        if !self.is_admin {
            return Err(ProcessError::Pinned(format!(
                "pair {} is high priority: only an admin can {verb} its session",
                target.pair_id
            )));
        }
        if !force {
            return Err(ProcessError::Pinned(format!(
                "pair {} is high priority: {verb} it with force: true",
                target.pair_id
            )));
        }
        Ok(Grant { forced: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: Actor<'static> = Actor {
        user_id: "alice",
        is_admin: false,
    };
    const BOB: Actor<'static> = Actor {
        user_id: "bob",
        is_admin: false,
    };
    const ADMIN: Actor<'static> = Actor {
        user_id: "root",
        is_admin: true,
    };

    fn session(started_by: &str, is_high_priority: bool) -> Target<'_> {
        Target {
            id: "s1",
            pair_id: "p1",
            started_by,
            is_high_priority,
        }
    }

    fn code(result: Result<Grant, ProcessError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(err) => smsops_common::ApiError::from(err).code.as_str(),
        }
    }

    #[test]
    fn a_session_is_its_starters_and_the_admins() {
        for action in [Action::Stop, Action::Restart] {
            for force in [false, true] {
                let alices = session("alice", false);
                assert_eq!(code(ALICE.may(action, alices, force)), "ok");
                assert_eq!(code(ADMIN.may(action, alices, force)), "ok");
                assert_eq!(code(BOB.may(action, alices, force)), "forbidden");
            }
        }
        let Err(err) = BOB.may(Action::Restart, session("alice", false), false) else {
            panic!("bob restarted alice's session");
        };
        assert!(err.to_string().contains("started by another user"), "{err}");
        assert!(err.to_string().contains("restart"), "{err}");
    }

    #[test]
    fn a_session_nobody_owns_is_the_admins_alone() {
        // A starter since deleted never signs in again; an empty one (never
        // written, but not trusted) matches no caller, not even an empty id.
        let nobodys = session("", false);
        let nameless = Actor {
            user_id: "",
            is_admin: false,
        };
        assert_eq!(
            code(nameless.may(Action::Restart, nobodys, false)),
            "forbidden"
        );
        assert_eq!(code(ADMIN.may(Action::Restart, nobodys, false)), "ok");
        let deleted = session("gone-user", false);
        assert_eq!(
            code(ALICE.may(Action::Restart, deleted, false)),
            "forbidden"
        );
        assert_eq!(code(ADMIN.may(Action::Restart, deleted, false)), "ok");
    }

    #[test]
    fn a_pinned_session_needs_an_admin_and_force() {
        let pinned = session("alice", true);
        assert_eq!(code(ALICE.may(Action::Stop, pinned, true)), "pair_pinned");
        assert_eq!(code(BOB.may(Action::Stop, pinned, true)), "forbidden");
        assert_eq!(code(ADMIN.may(Action::Stop, pinned, false)), "pair_pinned");
        assert_eq!(
            ADMIN.may(Action::Stop, pinned, true).ok(),
            Some(Grant { forced: true })
        );
        assert_eq!(
            ADMIN.may(Action::Stop, session("alice", false), true).ok(),
            Some(Grant { forced: false })
        );
    }
}
