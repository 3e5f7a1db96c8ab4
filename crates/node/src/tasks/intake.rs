//! Intake: whether a task frame is a task this node runs at all, before admission looks at it.
//!
//! 1. It is signed by the platform's task-signing key this node pins
//!    ([`crate::platform_key`]); a task signed by another key or altered after signing is
//!    dropped with a warning and no result (whoever relayed it may have altered it: nobody is
//!    blamed).
//! 2. It was not taken before ([`crate::replay`]): a replay (during the run, after it, after a
//!    restart) is dropped the same way; its `execution_unique` is now remembered until the
//!    deadline.
//! 3. A signing, refresh or repair task for a key this node holds names, for every member, the
//!    node that holds that party in the committee stored with the share of the generation the
//!    task names (pinned at key generation, changed only by a completed repair); the transport
//!    certificates are then checked against those node ids by admission. A repair may name
//!    another node for the party it rebuilds (the callback approves that node by name).
//!    Otherwise it is refused (`BadTask`): the task is authentic, so the platform learns why.
//! 4. No member is excluded from the key for good ([`KEY_BANS`]: the protocol library found it
//!    cheating in a way that leaks secret state); otherwise refused the same way.

use mpc_transport::task::{Fault, Outcome, Task, TaskBody};

use super::{Inner, Runtime, now_ms};
use crate::platform_key::TaskAuthError;
use crate::replay::Admission;
use crate::store::{Committee, KEY_BANS, ban_record};

/// What intake decided.
enum Intake {
    /// Run it.
    Run(Box<Task>),
    /// Answer this failure.
    Refuse {
        task_id: String,
        fault: Fault,
        detail: String,
    },
    /// Drop it without an answer (logged).
    Drop,
}

impl Runtime {
    /// Takes a task frame: intake, then the run.
    pub(super) async fn take(&self, bytes: Vec<u8>) {
        let inner = self.inner.clone();
        let decided = tokio::task::spawn_blocking(move || intake(&inner, &bytes)).await;
        match decided {
            Ok(Intake::Run(task)) => self.run_task(*task).await,
            Ok(Intake::Refuse {
                task_id,
                fault,
                detail,
            }) => {
                tracing::warn!(task_id = %task_id, "task refused: {detail}");
                self.reply(
                    &task_id,
                    Outcome::Failed {
                        fault,
                        detail,
                        culprits: vec![],
                    },
                );
            }
            Ok(Intake::Drop) => {}
            Err(_) => tracing::error!("task intake failed (blocking task panicked)"),
        }
    }
}

fn intake(inner: &Inner, bytes: &[u8]) -> Intake {
    let store = inner.store.as_ref();
    let task = match inner.platform.verify(store, bytes) {
        Ok(v) => v.into_task(),
        Err(TaskAuthError::Signed(e)) => {
            tracing::warn!(
                "task refused (not signed by the pinned platform key, or altered on the way): {e}; no result sent"
            );
            return Intake::Drop;
        }
        Err(TaskAuthError::Store(e)) => {
            tracing::error!("task not taken: the platform key could not be read or stored: {e}");
            return Intake::Drop;
        }
    };
    let refuse = |fault, detail: String| Intake::Refuse {
        task_id: task.task_id.clone(),
        fault,
        detail,
    };
    match inner.seen.admit(
        store,
        task.execution_unique,
        task.deadline_unix_ms,
        now_ms(),
    ) {
        Ok(Admission::Fresh) => {}
        Ok(Admission::Replayed) => {
            tracing::warn!(
                task_id = %task.task_id,
                execution = %hex::encode(&task.execution_unique[..8]),
                "task refused: taken before (a replay); no result sent"
            );
            return Intake::Drop;
        }
        Ok(Admission::Expired) => {
            return refuse(Fault::BadTask, "the task's deadline has passed".into());
        }
        Ok(Admission::TooFarAhead) => {
            return refuse(
                Fault::BadTask,
                format!(
                    "the task's deadline is more than {} h ahead",
                    crate::replay::MAX_TASK_HORIZON_MS / 3_600_000
                ),
            );
        }
        Err(e) => return refuse(Fault::Local, format!("key store: {e}")),
    }
    let key_id = match &task.body {
        TaskBody::Sign(s) => &s.key_id,
        TaskBody::Keygen(k) => &k.key_id,
        TaskBody::Refresh(r) => &r.key_id,
        TaskBody::Repair(r) => &r.key_id,
    };
    for m in &task.members {
        match store.get(KEY_BANS, &ban_record(key_id, &m.party)) {
            Ok(None) => {}
            Ok(Some(why)) => {
                return refuse(
                    Fault::BadTask,
                    format!(
                        "party {} is excluded from key {key_id} on this node for good: {}",
                        m.party,
                        String::from_utf8_lossy(&why)
                    ),
                );
            }
            Err(e) => return refuse(Fault::Local, e.to_string()),
        }
    }
    // The committee a task for an existing key must name: the one stored with the share of the
    // generation it names. A repair may name another node for the party it rebuilds (the
    // callback approval names that node); the node it is rebuilt on checks the others against
    // what it still holds, if anything.
    let (generation, rebuilt) = match &task.body {
        TaskBody::Keygen(_) => return Intake::Run(Box::new(task)),
        TaskBody::Sign(s) => (s.generation.as_deref(), None),
        TaskBody::Refresh(r) => (r.generation.as_deref(), None),
        TaskBody::Repair(r) => (r.generation.as_deref(), Some(r.party.as_str())),
    };
    match inner.committee_of(key_id, generation) {
        Ok(Some(committee)) => {
            let members = task
                .members
                .iter()
                .filter(|m| Some(m.party.as_str()) != rebuilt)
                .map(|m| (m.party.as_str(), m.node_id.as_str()));
            if let Err(e) = committee.admits(key_id, members) {
                return refuse(Fault::BadTask, e.to_string());
            }
            if committee == Committee::Unpinned {
                tracing::warn!(
                    key_id = %key_id,
                    "key stored by an older version without its committee: the task's committee is taken as given"
                );
            }
        }
        // An unknown key is refused by the run, naming it (a repair rebuilds it here).
        Ok(None) => {}
        Err(e) => return refuse(Fault::Local, e.to_string()),
    }
    Intake::Run(Box::new(task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::test_support::{member, runtime, sign_task};
    use mpc_transport::signed::TaskSigningKey;
    use mpc_transport::task::{Algorithm, Payload, TASK_VERSION};

    /// A party the library said to exclude is refused for that key, after the exclusion is
    /// stored (it survives restarts: it is a sealed record), and only for that key.
    #[tokio::test]
    async fn a_banned_party_is_refused_for_its_key_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, nodes) = runtime(dir.path(), 3);
        let platform = TaskSigningKey::generate(&mut rand_core::OsRng);
        let task = |key_id: &str, n: u8| Task {
            version: TASK_VERSION,
            task_id: format!("t{n}"),
            sino_id: "s".into(),
            request_id: "r".into(),
            deadline_unix_ms: now_ms() + 60_000,
            execution_unique: [n; 32],
            members: vec![member("a", &nodes[0]), member("b", &nodes[1])],
            body: TaskBody::Sign(mpc_transport::task::SignTask {
                key_id: key_id.into(),
                ..sign_task(Algorithm::Ecdsa, Payload::Digest { digest: [0; 32] })
            }),
        };
        let take = |t: &Task| intake(&rt.inner, &platform.sign(t).unwrap());
        assert!(matches!(take(&task("k", 1)), Intake::Run(_)));

        rt.ban("k", &["b".to_owned()], "OT consistency check failed")
            .await;
        match take(&task("k", 2)) {
            Intake::Refuse { fault, detail, .. } => {
                assert_eq!(fault, Fault::BadTask);
                assert!(
                    detail.contains("party b is excluded from key k")
                        && detail.contains("OT consistency check failed"),
                    "{detail}"
                );
            }
            _ => panic!("a banned party was admitted"),
        }
        assert!(matches!(take(&task("other", 3)), Intake::Run(_)));
        assert!(
            rt.inner
                .store
                .get(KEY_BANS, &ban_record("k", "b"))
                .unwrap()
                .is_some()
        );
    }
}
