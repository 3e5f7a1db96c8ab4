//! The runs this node has: each run's inbox (routed by derived execution id), its control block
//! with the run's one abort signal, the pending buffer for frames of runs not started yet, and
//! the quarantine.
//!
//! A run is stopped in one way only, [`Control::abort`]: by the coordinator's `Abort`
//! ([`Runtime::abort`]) or by the node shutting down ([`Runtime::shutdown`]). Every wait of a
//! run watches it: the callback through [`Runtime::bounded`], the session thread through [`Control::aborted`] and the `RunMsg::Abort` in its inbox.
//!
//! Memory a peer or the relay can make a node hold is bounded: a frame in a run's inbox (or in
//! its stash for a later phase) is an [`InboxFrame`] whose bytes count against the run's budget
//! ([`RUN_INBOX_BYTES`]) and the node's total ([`INBOX_TOTAL_BYTES`]) until the run takes it out;
//! frames beyond either are dropped. At most [`MAX_RUNS`] runs are registered at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Instant;

use mpc_transport::seal::{SealedBody, SealedEnvelope};
use mpc_tss::ExecutionId;
use tokio::sync::Notify;

use super::admission::Plan;
use super::fail::RunFail;
use super::{
    INBOX_TOTAL_BYTES, MAX_RUNS, PENDING_MAX_BYTES, PENDING_MAX_FRAMES, PENDING_TTL,
    RUN_INBOX_BYTES, RUN_INBOX_FRAMES, Runtime,
};

/// What a run's inbox carries.
pub(super) enum RunMsg {
    Frame(InboxFrame),
    Abort(String),
}

/// A protocol frame held for a run: its bytes count against the run's inbox budget and the
/// node's total until [`InboxFrame::take`] or drop.
pub(super) struct InboxFrame {
    frame: Box<SealedEnvelope>,
    _charge: Charge,
}

/// Bytes charged to a run's budget and the node's total, given back on drop.
struct Charge {
    size: usize,
    run: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.run.fetch_sub(self.size, Ordering::SeqCst);
        self.total.fetch_sub(self.size, Ordering::SeqCst);
    }
}

impl InboxFrame {
    /// Charges `frame` to `run` and `total`, or gives it back if either budget would be
    /// exceeded. Callers hold the runtime's state lock (so charges do not race each other).
    fn charge(
        frame: Box<SealedEnvelope>,
        run: &Arc<AtomicUsize>,
        total: &Arc<AtomicUsize>,
    ) -> Result<Self, Box<SealedEnvelope>> {
        let size = sealed_size(&frame);
        if run.load(Ordering::SeqCst).saturating_add(size) > RUN_INBOX_BYTES
            || total.load(Ordering::SeqCst).saturating_add(size) > INBOX_TOTAL_BYTES
        {
            return Err(frame);
        }
        run.fetch_add(size, Ordering::SeqCst);
        total.fetch_add(size, Ordering::SeqCst);
        Ok(InboxFrame {
            frame,
            _charge: Charge {
                size,
                run: run.clone(),
                total: total.clone(),
            },
        })
    }

    /// The frame, released from the budgets.
    pub(super) fn take(self) -> Box<SealedEnvelope> {
        self.frame
    }
}

impl Deref for InboxFrame {
    type Target = SealedEnvelope;
    fn deref(&self) -> &SealedEnvelope {
        &self.frame
    }
}

/// Where frames for one execution id go.
struct Route {
    tx: std_mpsc::SyncSender<RunMsg>,
    /// Bytes of the run's frames in its inbox and stash.
    bytes: Arc<AtomicUsize>,
}

/// Why a run could not be registered.
pub(super) enum Refused {
    /// A run with this execution unique is registered already.
    Duplicate,
    /// [`MAX_RUNS`] runs are registered.
    Busy,
}

/// One run's control block: its abort signal.
pub(super) struct Control {
    aborted: AtomicBool,
    reason: Mutex<String>,
    notify: Notify,
    tx: std_mpsc::SyncSender<RunMsg>,
}

impl Control {
    fn new(tx: std_mpsc::SyncSender<RunMsg>) -> Self {
        Control {
            aborted: AtomicBool::new(false),
            reason: Mutex::new(String::new()),
            notify: Notify::new(),
            tx,
        }
    }

    /// Stops the run: waits end at once ([`Runtime::bounded`]), the session thread at its next
    /// message or timeout check (the flag, and the notice in its inbox when there is room).
    pub(super) fn abort(&self, reason: &str) {
        if let Ok(mut r) = self.reason.lock() {
            *r = reason.to_owned();
        }
        self.aborted.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
        let _ = self.tx.try_send(RunMsg::Abort(reason.to_owned()));
    }

    /// Why the run was stopped, once it was.
    pub(super) fn aborted(&self) -> Option<String> {
        if self.aborted.load(Ordering::SeqCst) {
            Some(self.reason())
        } else {
            None
        }
    }

    fn reason(&self) -> String {
        self.reason.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// The runtime's mutable state, behind one mutex.
#[derive(Default)]
pub(super) struct State {
    /// Derived execution id → the run's inbox.
    routes: HashMap<[u8; 32], Route>,
    /// Bytes of frames in all runs' inboxes and stashes.
    inbox_bytes: Arc<AtomicUsize>,
    /// The task's execution_unique → its control block.
    runs: HashMap<[u8; 32], Arc<Control>>,
    pending: Pending,
    /// `(key_id, party)` refused until restart after a peer misbehaved.
    pub(super) quarantine: HashSet<(String, String)>,
}

impl Runtime {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands a protocol frame to its run's inbox, or to the pending buffer.
    pub(super) fn route(&self, frame: Box<SealedEnvelope>) {
        let mut st = self.state();
        let eid = frame.header.execution_id;
        if let Some(route) = st.routes.get(&eid) {
            let charged = match InboxFrame::charge(frame, &route.bytes, &st.inbox_bytes) {
                Ok(f) => f,
                Err(f) => {
                    tracing::warn!(
                        execution_id = %hex::encode(&eid[..8]),
                        sender = %f.header.sender,
                        size = sealed_size(&f),
                        "run inbox byte budget exhausted; protocol frame dropped"
                    );
                    return;
                }
            };
            match route.tx.try_send(RunMsg::Frame(charged)) {
                Ok(()) => {}
                Err(std_mpsc::TrySendError::Full(_)) => {
                    tracing::debug!(
                        execution_id = %hex::encode(&eid[..8]),
                        "run inbox full; protocol frame dropped"
                    );
                }
                Err(std_mpsc::TrySendError::Disconnected(_)) => {
                    // The run ended: drop the route, keep nothing.
                    st.routes.remove(&eid);
                }
            }
            return;
        }
        st.pending.push(Instant::now(), frame);
    }

    /// Stops every run (the node is shutting down): sessions end at their next message or
    /// timeout check, tasks waiting for the callback end at once. No results
    /// are sent.
    pub fn shutdown(&self) {
        let st = self.state();
        for c in st.runs.values() {
            c.abort("node shutting down");
        }
        if !st.runs.is_empty() {
            tracing::info!(runs = st.runs.len(), "runs stopped: node shutting down");
        }
    }

    /// The coordinator's `Abort` for the run with this execution unique.
    pub(super) fn abort(&self, unique: &[u8; 32], reason: &str) {
        let st = self.state();
        match st.runs.get(unique) {
            Some(c) => {
                tracing::info!(
                    execution = %hex::encode(&unique[..8]),
                    reason,
                    "abort received; stopping the run"
                );
                c.abort(reason);
            }
            None => tracing::debug!(
                execution = %hex::encode(&unique[..8]),
                "abort for a run this node does not run"
            ),
        }
    }

    /// Registers the run's execution ids; returns its inbox and control block, with buffered
    /// frames already delivered.
    pub(super) fn register(
        &self,
        unique: [u8; 32],
        eids: &[ExecutionId],
    ) -> Result<(std_mpsc::Receiver<RunMsg>, Arc<Control>), Refused> {
        let (tx, rx) = std_mpsc::sync_channel(RUN_INBOX_FRAMES);
        let mut st = self.state();
        if st.runs.contains_key(&unique) {
            return Err(Refused::Duplicate);
        }
        if st.runs.len() >= MAX_RUNS {
            return Err(Refused::Busy);
        }
        let control = Arc::new(Control::new(tx.clone()));
        st.runs.insert(unique, control.clone());
        let bytes = Arc::new(AtomicUsize::new(0));
        for e in eids {
            st.routes.insert(
                *e.as_bytes(),
                Route {
                    tx: tx.clone(),
                    bytes: bytes.clone(),
                },
            );
        }
        let wanted: HashSet<[u8; 32]> = eids.iter().map(|e| *e.as_bytes()).collect();
        let total = st.inbox_bytes.clone();
        for f in st.pending.take_for(&wanted, Instant::now()) {
            if let Ok(f) = InboxFrame::charge(f, &bytes, &total) {
                let _ = tx.try_send(RunMsg::Frame(f));
            }
        }
        Ok((rx, control))
    }

    pub(super) fn unregister(&self, unique: &[u8; 32], eids: &[ExecutionId]) {
        let mut st = self.state();
        st.runs.remove(unique);
        for e in eids {
            st.routes.remove(e.as_bytes());
        }
    }

    /// Waits for `fut`, the run's abort or its deadline.
    pub(super) async fn bounded<T>(
        &self,
        plan: &Plan,
        control: &Control,
        what: &str,
        fut: impl Future<Output = T>,
    ) -> Result<T, RunFail> {
        let notified = control.notify.notified();
        if let Some(reason) = control.aborted() {
            return Err(RunFail::Aborted(reason));
        }
        let deadline = tokio::time::Instant::from_std(plan.deadline);
        tokio::select! {
            r = fut => Ok(r),
            _ = notified => Err(RunFail::Aborted(control.reason())),
            _ = tokio::time::sleep_until(deadline) => Err(RunFail::Timeout {
                detail: format!("deadline passed while waiting for {what}"),
                culprits: vec![],
            }),
        }
    }
}

fn sealed_size(f: &SealedEnvelope) -> usize {
    let body = match &f.body {
        SealedBody::Broadcast { payload, signature } => payload.len() + signature.len(),
        SealedBody::P2p { ciphertext, .. } => ciphertext.len() + 32,
    };
    body + f.header.protocol.len() + f.header.sender.len() + 64
}

/// Frames for execution ids no run has claimed yet, bounded in count, bytes and age.
#[derive(Default)]
pub(super) struct Pending {
    q: VecDeque<(Instant, Box<SealedEnvelope>, usize)>,
    bytes: usize,
}

impl Pending {
    fn expire(&mut self, now: Instant) {
        while let Some((at, f, sz)) = self.q.front() {
            if now.saturating_duration_since(*at) < PENDING_TTL {
                break;
            }
            tracing::debug!(
                execution_id = %hex::encode(&f.header.execution_id[..8]),
                sender = %f.header.sender,
                "frame for an unknown run expired"
            );
            self.bytes -= *sz;
            self.q.pop_front();
        }
    }

    fn push(&mut self, now: Instant, frame: Box<SealedEnvelope>) {
        self.expire(now);
        let size = sealed_size(&frame);
        if size > PENDING_MAX_BYTES {
            tracing::debug!("frame larger than the pending buffer dropped");
            return;
        }
        while self.q.len() >= PENDING_MAX_FRAMES || self.bytes + size > PENDING_MAX_BYTES {
            let Some((_, old, sz)) = self.q.pop_front() else {
                break;
            };
            self.bytes -= sz;
            tracing::debug!(
                execution_id = %hex::encode(&old.header.execution_id[..8]),
                sender = %old.header.sender,
                "pending buffer full; oldest frame for an unknown run dropped"
            );
        }
        self.bytes += size;
        self.q.push_back((now, frame, size));
    }

    /// Removes and returns the live frames of `eids`, oldest first.
    #[allow(clippy::vec_box)] // frames move between queues; boxes keep that a pointer copy
    fn take_for(&mut self, eids: &HashSet<[u8; 32]>, now: Instant) -> Vec<Box<SealedEnvelope>> {
        self.expire(now);
        let mut out = Vec::new();
        let mut keep = VecDeque::with_capacity(self.q.len());
        for (at, f, sz) in std::mem::take(&mut self.q) {
            if eids.contains(&f.header.execution_id) {
                self.bytes -= sz;
                out.push(f);
            } else {
                keep.push_back((at, f, sz));
            }
        }
        self.q = keep;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc_transport::seal::EnvelopeHeader;
    use std::time::Duration;

    fn frame(eid: u8, len: usize) -> Box<SealedEnvelope> {
        Box::new(SealedEnvelope {
            header: EnvelopeHeader {
                version: 1,
                execution_id: [eid; 32],
                protocol: "eddsa_sign".into(),
                round: 0,
                sender: "a".into(),
                receiver: None,
                seq: 0,
            },
            body: SealedBody::Broadcast {
                payload: vec![0; len],
                signature: String::new(),
            },
        })
    }

    fn eid(unique: u8) -> ExecutionId {
        let parties = [mpc_tss::PartyId::new("a").unwrap()];
        ExecutionId::derive(mpc_tss::ProtocolKind::EddsaSign, &[unique], &parties)
    }

    fn frame_for(e: &ExecutionId, len: usize) -> Box<SealedEnvelope> {
        let mut f = frame(0, len);
        f.header.execution_id = *e.as_bytes();
        f
    }

    /// A flooding peer or relay cannot make a run (or all runs) hold more than the byte
    /// budgets: frames beyond them are dropped, and what the run takes out is given back.
    #[test]
    fn run_inboxes_are_bounded_in_bytes_and_runs_in_number() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, _) = crate::tasks::test_support::runtime(dir.path(), 1);
        let e1 = eid(1);
        let (rx, _c) = rt
            .register([1; 32], std::slice::from_ref(&e1))
            .ok()
            .unwrap();
        // 1 MiB frames, three times the budget's worth.
        let mib = 1024 * 1024;
        for _ in 0..(3 * RUN_INBOX_BYTES / mib) {
            rt.route(frame_for(&e1, mib));
        }
        let held: Vec<InboxFrame> = rx
            .try_iter()
            .filter_map(|m| match m {
                RunMsg::Frame(f) => Some(f),
                RunMsg::Abort(_) => None,
            })
            .collect();
        let bytes: usize = held.iter().map(|f| sealed_size(&f.frame)).sum();
        assert!(bytes <= RUN_INBOX_BYTES, "{bytes}");
        assert!(bytes > RUN_INBOX_BYTES - 2 * mib, "{bytes}");
        assert_eq!(rt.state().inbox_bytes.load(Ordering::SeqCst), bytes);
        // Taking frames out gives their bytes back: more fit again.
        drop(held.into_iter().map(InboxFrame::take).collect::<Vec<_>>());
        assert_eq!(rt.state().inbox_bytes.load(Ordering::SeqCst), 0);
        rt.route(frame_for(&e1, mib));
        assert_eq!(rx.try_iter().count(), 1);

        // The node's total: runs together hold at most INBOX_TOTAL_BYTES.
        let mut rxs = Vec::new();
        for i in 2..(2 + INBOX_TOTAL_BYTES / RUN_INBOX_BYTES + 2) as u8 {
            let e = eid(i);
            let (rx, c) = rt.register([i; 32], std::slice::from_ref(&e)).ok().unwrap();
            for _ in 0..(RUN_INBOX_BYTES / mib) {
                rt.route(frame_for(&e, mib));
            }
            rxs.push((rx, c));
        }
        let total = rt.state().inbox_bytes.load(Ordering::SeqCst);
        assert!(total <= INBOX_TOTAL_BYTES, "{total}");
        assert!(total > INBOX_TOTAL_BYTES / 2, "{total}");

        // At most MAX_RUNS registered; the next is refused as busy, a duplicate as duplicate.
        let registered = rt.state().runs.len();
        let mut keep = Vec::new();
        for i in 0..(MAX_RUNS - registered) {
            let u = [100 + i as u8; 32];
            keep.push(rt.register(u, &[eid(100 + i as u8)]).ok().unwrap());
        }
        assert!(matches!(
            rt.register([250; 32], &[eid(250)]),
            Err(Refused::Busy)
        ));
        assert!(matches!(
            rt.register([1; 32], &[eid(1)]),
            Err(Refused::Duplicate)
        ));
    }

    #[test]
    fn pending_is_bounded_in_frames_bytes_and_age() {
        let t0 = Instant::now();
        let mut p = Pending::default();
        for i in 0..(PENDING_MAX_FRAMES + 10) {
            p.push(t0, frame((i % 3) as u8, 10));
        }
        assert_eq!(p.q.len(), PENDING_MAX_FRAMES);
        // Big frames push out the oldest until the byte bound holds.
        for _ in 0..5 {
            p.push(t0, frame(9, 5 * 1024 * 1024));
        }
        assert!(p.bytes <= PENDING_MAX_BYTES);
        assert_eq!(
            p.q.iter()
                .filter(|(_, f, _)| f.header.execution_id == [9; 32])
                .count(),
            3
        );
        assert_eq!(p.bytes, p.q.iter().map(|(_, _, s)| *s).sum::<usize>());
        // Too big to ever fit: dropped.
        let before = p.q.len();
        p.push(t0, frame(8, PENDING_MAX_BYTES + 1));
        assert_eq!(p.q.len(), before);
        // A run claims its frames, oldest first; the others stay.
        let want: HashSet<[u8; 32]> = [[9; 32]].into_iter().collect();
        assert_eq!(p.take_for(&want, t0).len(), 3);
        assert!(p.q.iter().all(|(_, f, _)| f.header.execution_id != [9; 32]));
        // After the TTL everything is gone.
        let later = t0 + PENDING_TTL + Duration::from_millis(1);
        let all: HashSet<[u8; 32]> = (0..10).map(|i| [i; 32]).collect();
        assert!(p.take_for(&all, later).is_empty());
        assert_eq!((p.q.len(), p.bytes), (0, 0));
    }
}
