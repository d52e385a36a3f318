//! process-svc owns sessions, so it alone can tell whether a pair is in
//! use. Before a pair is deleted, operator-svc asks it, with the admin's
//! token, to retire the pair: process-svc refuses while a session on the
//! pair is active, and otherwise takes the pair's session lock, so no
//! session starts on the pair while the delete goes on. When process-svc
//! cannot answer, nothing is deleted.

use smsops_common::grpc::Channel;
use smsops_common::{ApiError, ErrorCode, auth::Caller};
use smsops_proto::process::v1::{RetirePairRequest, process_service_client::ProcessServiceClient};
use tonic::{Code, Status};

use super::OperatorError;

/// How soon a delete refused for want of process-svc is worth trying again.
const RETRY_AFTER_SECS: u32 = 5;

#[derive(Clone)]
pub struct Sessions {
    process: ProcessServiceClient<Channel>,
}

impl Sessions {
    pub fn new(process: Channel) -> Self {
        Self {
            process: ProcessServiceClient::new(process),
        }
    }

    /// Ok once no session may use the pair any more.
    pub async fn retire(&self, caller: &Caller, pair_id: &str) -> Result<(), OperatorError> {
        let request = caller.authorize(tonic::Request::new(RetirePairRequest {
            country_operator_id: pair_id.to_string(),
        }));
        match self.process.clone().retire_pair(request).await {
            Ok(_) => Ok(()),
            Err(status) => Err(refusal(&status, pair_id)),
        }
    }
}

/// process-svc's refusal as the delete's: its own code when it gave one
/// (pair_in_use, forbidden); 503 when it could not tell, including a
/// process-svc too old to know the call, as during a rolling update.
fn refusal(status: &Status, pair_id: &str) -> OperatorError {
    let err = ApiError::from_status(status);
    let unknown = status.code() == Code::Unimplemented
        || matches!(
            err.code,
            ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::Internal
        );
    if !unknown {
        return OperatorError::Upstream(err);
    }
    tracing::warn!(pair = %pair_id, status = %status, "cannot ask process-svc whether the pair is in use");
    OperatorError::Upstream(ApiError {
        retry_after: Some(RETRY_AFTER_SECS),
        ..ApiError::new(
            ErrorCode::Unavailable,
            format!(
                "cannot tell whether a session uses pair {pair_id} (process-svc did not answer): \
                 nothing was deleted, try again"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(err: OperatorError) -> (ErrorCode, Option<u32>) {
        let api = ApiError::from(err);
        (api.code, api.retry_after)
    }

    #[test]
    fn a_pair_in_use_is_a_conflict_and_silence_is_no_answer() {
        let in_use: Status = ApiError::new(ErrorCode::PairInUse, "in use by session s1").into();
        assert_eq!(code(refusal(&in_use, "p1")), (ErrorCode::PairInUse, None));
        let forbidden: Status = ApiError::forbidden("admins only").into();
        assert_eq!(code(refusal(&forbidden, "p1")).0, ErrorCode::Forbidden);
        for status in [
            Status::unavailable("connection refused"),
            Status::deadline_exceeded("slow"),
            Status::unimplemented("no such method"),
            Status::internal("boom"),
        ] {
            assert_eq!(
                code(refusal(&status, "p1")),
                (ErrorCode::Unavailable, Some(RETRY_AFTER_SECS)),
                "{status}"
            );
        }
    }
}
