//! One run's connection to the network ([`Wire`]), owned by its session thread
//! ([`Runtime::on_thread`]): outgoing envelopes sealed with the identity key (p2p ones encrypted
//! to the receiver's verified transport key), incoming ones opened with the claimed sender's
//! identity key, deduplicated and fed to the session; frames of a later phase stashed.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, mpsc as std_mpsc};
use std::time::Instant;

use mpc_callback::mpc_wire::signature::EcdsaSigner;
use mpc_transport::frame::Frame;
use mpc_transport::keys::TransportSecret;
use mpc_transport::seal::{self, EnvelopeHeader, SealedEnvelope};
use mpc_tss::{Envelope, ExecutionId, PartyId, ProtocolKind, Session, Step};
use rand_core::OsRng;
use tokio::sync::mpsc;
use zeroize::Zeroize;

use super::Runtime;
use super::admission::{Peer, Plan};
use super::fail::RunFail;
use super::registry::{Control, InboxFrame, RunMsg};

/// Frames a run keeps for its next phase (keygen → aux info).
const STASH_MAX_FRAMES: usize = 256;

impl Runtime {
    /// Runs `body` on a thread of its own and waits for it. There is no slot to wait for: the
    /// registered runs (at most [`super::MAX_RUNS`]) bound the threads.
    pub(super) async fn on_thread<T: Send + 'static>(
        &self,
        plan: &Plan,
        control: &Arc<Control>,
        rx: std_mpsc::Receiver<RunMsg>,
        body: impl FnOnce(&mut Wire) -> Result<T, RunFail> + Send + 'static,
    ) -> Result<T, RunFail> {
        let mut wire = Wire {
            me: plan.me,
            identity: self.inner.identity.clone(),
            transport: self.inner.transport.clone(),
            peers: plan.peers.clone(),
            out: self.inner.out.clone(),
            rx,
            control: control.clone(),
            stash: Vec::new(),
            seen: HashSet::new(),
            deadline: plan.deadline,
            seq: 0,
        };
        let (tx, done) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("mpc-session".into())
            .spawn(move || {
                let r = body(&mut wire);
                let _ = tx.send(r);
            });
        if spawned.is_err() {
            return Err(RunFail::Local("cannot start a session thread".into()));
        }
        done.await
            .map_err(|_| RunFail::Local("session thread ended without a result".into()))?
    }
}

/// One run's connection to the network, owned by its session thread.
pub(super) struct Wire {
    me: PartyId,
    identity: Arc<EcdsaSigner>,
    transport: Arc<TransportSecret>,
    peers: BTreeMap<String, Peer>,
    out: mpsc::UnboundedSender<Frame>,
    rx: std_mpsc::Receiver<RunMsg>,
    /// The run's control block (abort flag, also when its inbox was too full for the notice).
    control: Arc<Control>,
    /// Frames of a later phase of this task (aux info while keygen runs); they stay charged to
    /// the run's inbox budget.
    stash: Vec<InboxFrame>,
    seen: HashSet<([u8; 32], u16, String, Option<String>)>,
    deadline: Instant,
    seq: u64,
}

impl Wire {
    /// Drives `session` to its output: sends what it produces, feeds it what arrives.
    pub(super) fn drive<O>(&mut self, mut session: Session<O>) -> Result<O, RunFail> {
        let eid = *session.execution_id().as_bytes();
        self.seq = 0;
        let step = session.start().map_err(RunFail::from_session)?;
        if let Some(o) = self.send(step)? {
            return Ok(o);
        }
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.stash)
            .into_iter()
            .partition(|f| f.header.execution_id == eid);
        self.stash = rest;
        for f in mine {
            if let Some(o) = self.deliver(&mut session, f.take())? {
                return Ok(o);
            }
        }
        loop {
            if let Some(reason) = self.control.aborted() {
                return Err(RunFail::Aborted(reason));
            }
            let left = self.deadline.saturating_duration_since(Instant::now());
            let timeout = || {
                let culprits: Vec<String> = session
                    .waiting_for()
                    .iter()
                    .map(|p| p.to_string())
                    .collect();
                RunFail::Timeout {
                    detail: format!(
                        "{} did not finish before the deadline; waiting for {}",
                        session.protocol().name(),
                        culprits.join(",")
                    ),
                    culprits,
                }
            };
            if left.is_zero() {
                return Err(timeout());
            }
            match self.rx.recv_timeout(left) {
                Ok(RunMsg::Frame(f)) if f.header.execution_id == eid => {
                    if let Some(o) = self.deliver(&mut session, f.take())? {
                        return Ok(o);
                    }
                }
                Ok(RunMsg::Frame(f)) => {
                    if self.stash.len() < STASH_MAX_FRAMES {
                        self.stash.push(f);
                    }
                }
                Ok(RunMsg::Abort(reason)) => return Err(RunFail::Aborted(reason)),
                Err(std_mpsc::RecvTimeoutError::Timeout) => return Err(timeout()),
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(RunFail::Local("run inbox closed".into()));
                }
            }
        }
    }

    fn send<O>(&mut self, step: Step<O>) -> Result<Option<O>, RunFail> {
        for mut env in step.outgoing {
            let receiver_key = match env.receiver {
                None => None,
                Some(r) => Some(
                    self.peers
                        .get(&r.to_string())
                        .map(|p| p.key.clone())
                        .ok_or_else(|| RunFail::Local(format!("no transport key for party {r}")))?,
                ),
            };
            let mut wire_env = seal::Envelope {
                header: EnvelopeHeader {
                    version: env.version,
                    execution_id: *env.execution_id.as_bytes(),
                    protocol: env.protocol.name().to_owned(),
                    round: env.round,
                    sender: env.sender.to_string(),
                    receiver: env.receiver.map(|r| r.to_string()),
                    seq: self.seq,
                },
                payload: std::mem::take(&mut env.payload),
            };
            self.seq += 1;
            let sealed = seal::seal(&self.identity, receiver_key.as_ref(), &wire_env, &mut OsRng);
            wire_env.payload.zeroize();
            let sealed = sealed.map_err(|e| RunFail::Local(e.to_string()))?;
            if self.out.send(Frame::Protocol(sealed)).is_err() {
                return Err(RunFail::Local("network runtime stopped".into()));
            }
        }
        Ok(step.output)
    }

    fn deliver<O>(
        &mut self,
        session: &mut Session<O>,
        frame: Box<SealedEnvelope>,
    ) -> Result<Option<O>, RunFail> {
        let h = &frame.header;
        let me = self.me.to_string();
        let Some(peer) = self.peers.get(&h.sender).filter(|_| h.sender != me) else {
            tracing::warn!(
                claimed_sender = %h.sender,
                round = h.round,
                "protocol frame from a party outside the run dropped"
            );
            return Ok(None);
        };
        let opened = match seal::open(&frame, &self.transport, &peer.vk, &me) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(
                    claimed_sender = %h.sender,
                    round = h.round,
                    "protocol frame dropped (not authentic or not for this party): {}",
                    e.fault
                );
                return Ok(None);
            }
        };
        let h = opened.header;
        let key = (
            h.execution_id,
            h.round,
            h.sender.clone(),
            h.receiver.clone(),
        );
        if !self.seen.insert(key) {
            tracing::debug!(sender = %h.sender, round = h.round, "duplicate protocol frame dropped");
            return Ok(None);
        }
        // Authentic from here: anything wrong is the sender's doing.
        let misbehaved = |what: String| RunFail::Peer {
            detail: format!("party {} sent {what}", h.sender),
            culprits: vec![h.sender.clone()],
            ban: false,
        };
        let protocol = ProtocolKind::from_name(&h.protocol)
            .ok_or_else(|| misbehaved(format!("an unknown protocol {:?}", h.protocol)))?;
        let sender = PartyId::new(&h.sender).map_err(|e| misbehaved(e.to_string()))?;
        let receiver = h
            .receiver
            .as_deref()
            .map(PartyId::new)
            .transpose()
            .map_err(|e| misbehaved(e.to_string()))?;
        let env = Envelope {
            version: h.version,
            execution_id: ExecutionId::from_bytes(h.execution_id),
            protocol,
            round: h.round,
            sender,
            receiver,
            payload: opened.payload,
        };
        let step = session.handle(env).map_err(RunFail::from_session)?;
        self.send(step)
    }
}
