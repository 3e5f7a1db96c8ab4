//! Why a run ended without a result of its own, and the [`Outcome`] the coordinator gets for
//! it. "A peer misbehaved" (blamed, quarantined) and "this node failed" stay apart.

use mpc_transport::task::{Fault, Outcome};
use mpc_tss::SessionError;

use crate::store::StoreAccessError;

/// Why a run ended without a result.
#[derive(Debug)]
pub(super) enum RunFail {
    Peer {
        detail: String,
        culprits: Vec<String>,
        /// The library requires that the culprits never take part with this key again
        /// ([`SessionError::BanRequired`]); otherwise the quarantine lasts until restart.
        ban: bool,
    },
    Timeout {
        detail: String,
        culprits: Vec<String>,
    },
    Aborted(String),
    Rejected(String),
    Callback(String),
    BadTask(String),
    Local(String),
}

impl RunFail {
    pub(super) fn from_session(e: SessionError) -> Self {
        let culprits = e.culprits().iter().map(|p| p.to_string()).collect();
        match e {
            SessionError::Misbehaved { .. } | SessionError::Aborted { .. } => RunFail::Peer {
                detail: e.to_string(),
                culprits,
                ban: false,
            },
            SessionError::BanRequired { .. } => RunFail::Peer {
                detail: e.to_string(),
                culprits,
                ban: true,
            },
            SessionError::Input(i) => RunFail::BadTask(i.to_string()),
            other => RunFail::Local(other.to_string()),
        }
    }

    pub(super) fn outcome(self) -> Option<Outcome> {
        let (fault, detail, culprits) = match self {
            RunFail::Peer {
                detail, culprits, ..
            } => (Fault::PeerMisbehaved, detail, culprits),
            RunFail::Timeout { detail, culprits } => (Fault::Timeout, detail, culprits),
            RunFail::Aborted(_) => return None,
            RunFail::Rejected(reason) => return Some(Outcome::Rejected { reason }),
            RunFail::Callback(d) => (Fault::Callback, d, vec![]),
            RunFail::BadTask(d) => (Fault::BadTask, d, vec![]),
            RunFail::Local(d) => (Fault::Local, d, vec![]),
        };
        Some(Outcome::Failed {
            fault,
            detail,
            culprits,
        })
    }
}

impl From<StoreAccessError> for RunFail {
    fn from(e: StoreAccessError) -> Self {
        RunFail::Local(e.to_string())
    }
}

pub(super) fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::KeygenDone { .. } => "keygen_done",
        Outcome::Signed { .. } => "signed",
        Outcome::Refreshed { .. } => "refreshed",
        Outcome::Rejected { .. } => "rejected",
        Outcome::Failed { .. } => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc_tss::PartyId;

    #[test]
    fn failures_map_to_outcomes() {
        assert_eq!(RunFail::Aborted("x".into()).outcome(), None);
        assert_eq!(
            RunFail::Rejected("no".into()).outcome(),
            Some(Outcome::Rejected {
                reason: "no".into()
            })
        );
        let Some(Outcome::Failed {
            fault, culprits, ..
        }) = RunFail::Timeout {
            detail: String::new(),
            culprits: vec!["b".into()],
        }
        .outcome()
        else {
            panic!()
        };
        assert_eq!((fault, culprits), (Fault::Timeout, vec!["b".to_string()]));
        let Some(Outcome::Failed { fault, .. }) = RunFail::Callback("down".into()).outcome() else {
            panic!()
        };
        assert_eq!(fault, Fault::Callback);
        let e = SessionError::Aborted {
            culprits: vec![PartyId::new("c").unwrap()],
            detail: "bad proof".into(),
        };
        let Some(Outcome::Failed {
            fault, culprits, ..
        }) = RunFail::from_session(e).outcome()
        else {
            panic!()
        };
        assert_eq!(
            (fault, culprits),
            (Fault::PeerMisbehaved, vec!["c".to_string()])
        );
    }
}
