//! Sans-IO protocol runs.
//!
//! A [`Session`] is one party's side of one protocol run. It takes [`Envelope`]s in
//! ([`Session::handle`]) and gives envelopes out, and at the end its output. It never touches a
//! socket or a clock: the caller moves envelopes and enforces timeouts (a silent party is the
//! caller's timeout, reported with [`Session::waiting_for`]).
//!
//! Before the protocol library sees a message, the session checks that the envelope belongs to
//! this run (execution id, protocol), is addressed to us, comes from a participant, decodes,
//! carries the round it claims, arrives the way that round is sent (broadcast or p2p), and is
//! the first of its round from that sender. Any failure names the sender.
//!
//! A session is `!Send` (the round-based state machines use `Rc` inside): drive it from one
//! thread. The node gives each run a thread of its own, which also keeps the 1 s of big-integer
//! work per signature off the async runtime.

use std::collections::{BTreeSet, HashSet, VecDeque};

use round_based::state_machine::{ProceedResult, StateMachine};
use round_based::{Incoming, MessageDestination, MessageType, ProtocolMessage};
use serde::{Serialize, de::DeserializeOwned};

use crate::codec;
use crate::envelope::{ENVELOPE_VERSION, Envelope, ExecutionId, ProtocolKind};
use crate::error::{Misbehaviour, SessionError};
use crate::party::PartyId;

/// What one call to a session produced.
#[derive(Debug)]
pub struct Step<O> {
    /// Envelopes to deliver (broadcasts once, with `receiver: None`).
    pub outgoing: Vec<Envelope>,
    /// The run's result, once finished.
    pub output: Option<O>,
}

/// Per-run traffic counters (payload bytes; a broadcast counts once per receiver).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages sent (a broadcast counts once per receiver).
    pub messages_sent: u64,
    /// Payload bytes sent (a broadcast counts once per receiver).
    pub bytes_sent: u64,
}

/// An outgoing protocol message before it is wrapped in an envelope.
pub(crate) struct RawOut {
    pub to: Option<u16>,
    pub round: u16,
    pub payload: Vec<u8>,
}

pub(crate) enum DriverStep<O> {
    Send(RawOut),
    NeedMessage,
    Done(Result<O, SessionError>),
}

/// A protocol as seen by [`Session`]: indices are protocol indices (positions in the run's
/// participant list).
pub(crate) trait Driver<O> {
    /// Decodes and queues one message; `Err` names what was wrong with it.
    fn accept(
        &mut self,
        sender: u16,
        broadcast: bool,
        round: u16,
        payload: &[u8],
    ) -> Result<(), Misbehaviour>;
    /// Runs until the protocol needs a message it does not have, sends one, or ends.
    fn step(&mut self) -> DriverStep<O>;
}

/// One party's side of one protocol run.
pub struct Session<O> {
    kind: ProtocolKind,
    eid: ExecutionId,
    me: PartyId,
    participants: Vec<PartyId>,
    driver: Box<dyn Driver<O>>,
    seen: HashSet<(u16, PartyId, bool)>,
    traffic: Traffic,
    started: bool,
    finished: bool,
}

impl<O> std::fmt::Debug for Session<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("protocol", &self.kind)
            .field("execution_id", &self.eid)
            .field("me", &self.me)
            .field("participants", &self.participants)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<O> Session<O> {
    pub(crate) fn new(
        kind: ProtocolKind,
        eid: ExecutionId,
        me: PartyId,
        participants: Vec<PartyId>,
        driver: Box<dyn Driver<O>>,
    ) -> Self {
        Session {
            kind,
            eid,
            me,
            participants,
            driver,
            seen: HashSet::new(),
            traffic: Traffic::default(),
            started: false,
            finished: false,
        }
    }

    /// The run's protocol.
    pub fn protocol(&self) -> ProtocolKind {
        self.kind
    }

    /// The run's execution id.
    pub fn execution_id(&self) -> ExecutionId {
        self.eid
    }

    /// This party.
    pub fn me(&self) -> PartyId {
        self.me
    }

    /// Everyone taking part, in protocol-index order.
    pub fn participants(&self) -> &[PartyId] {
        &self.participants
    }

    /// Traffic sent so far.
    pub fn traffic(&self) -> Traffic {
        self.traffic
    }

    /// `true` once the run produced its output or failed.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Starts the run: the first round's messages.
    pub fn start(&mut self) -> Result<Step<O>, SessionError> {
        if self.started {
            return Ok(Step {
                outgoing: vec![],
                output: None,
            });
        }
        self.started = true;
        self.advance()
    }

    /// Takes one envelope from a peer; returns what the run produced in response.
    ///
    /// An error ends the run: the caller aborts it (and tells the others) rather than going on.
    pub fn handle(&mut self, env: Envelope) -> Result<Step<O>, SessionError> {
        if self.finished {
            return Err(SessionError::Finished);
        }
        if !self.started {
            // Messages can arrive before the local start (the others began first).
            self.started = true;
            let mut first = self.advance()?;
            let mut rest = self.handle(env)?;
            first.outgoing.append(&mut rest.outgoing);
            first.output = rest.output;
            return Ok(first);
        }
        if let Err(what) = self.check(&env) {
            self.finished = true;
            return Err(SessionError::Misbehaved {
                party: env.sender,
                what,
            });
        }
        self.advance()
    }

    /// Participants that have not yet sent anything in the round the run waits on, as far as
    /// this layer can tell: everyone we have no message from in the highest round seen so far.
    /// Used to name silent parties when the caller's timeout fires.
    pub fn waiting_for(&self) -> Vec<PartyId> {
        let max_round = self.seen.iter().map(|(r, _, _)| *r).max();
        let heard: BTreeSet<PartyId> = self
            .seen
            .iter()
            .filter(|(r, _, _)| Some(*r) == max_round)
            .map(|(_, p, _)| *p)
            .collect();
        self.participants
            .iter()
            .filter(|p| **p != self.me && (max_round.is_none() || !heard.contains(p)))
            .copied()
            .collect()
    }

    fn check(&mut self, env: &Envelope) -> Result<(), Misbehaviour> {
        if env.version != ENVELOPE_VERSION || env.execution_id != self.eid {
            return Err(Misbehaviour::WrongExecution);
        }
        if env.protocol != self.kind {
            return Err(Misbehaviour::WrongProtocol {
                expected: self.kind.name(),
                got: format!("{:?}", env.protocol),
            });
        }
        if env.receiver.is_some_and(|r| r != self.me) {
            return Err(Misbehaviour::WrongReceiver(env.receiver));
        }
        let sender = match self.participants.iter().position(|p| *p == env.sender) {
            Some(i) if env.sender != self.me => i as u16,
            _ => return Err(Misbehaviour::NotAParticipant),
        };
        if env.payload.len() > codec::MAX_ENVELOPE_BYTES {
            return Err(Misbehaviour::TooLarge(env.payload.len()));
        }
        let broadcast = env.receiver.is_none();
        if !self.seen.insert((env.round, env.sender, broadcast)) {
            return Err(Misbehaviour::Duplicate {
                round: env.round,
                kind: if broadcast { "broadcast" } else { "p2p" },
            });
        }
        self.driver
            .accept(sender, broadcast, env.round, &env.payload)
    }

    fn advance(&mut self) -> Result<Step<O>, SessionError> {
        let mut outgoing = Vec::new();
        loop {
            match self.driver.step() {
                DriverStep::Send(raw) => self.wrap(raw, &mut outgoing)?,
                DriverStep::NeedMessage => {
                    return Ok(Step {
                        outgoing,
                        output: None,
                    });
                }
                DriverStep::Done(result) => {
                    self.finished = true;
                    let output = result?;
                    return Ok(Step {
                        outgoing,
                        output: Some(output),
                    });
                }
            }
        }
    }

    fn wrap(&mut self, raw: RawOut, out: &mut Vec<Envelope>) -> Result<(), SessionError> {
        let receiver = match raw.to {
            None => None,
            Some(j) => Some(*self.participants.get(j as usize).ok_or_else(|| {
                SessionError::Local(format!("protocol addressed unknown index {j}"))
            })?),
        };
        let copies = if receiver.is_some() {
            1
        } else {
            self.participants.len().saturating_sub(1) as u64
        };
        self.traffic.messages_sent += copies;
        self.traffic.bytes_sent += copies * raw.payload.len() as u64;
        out.push(Envelope {
            version: ENVELOPE_VERSION,
            execution_id: self.eid,
            protocol: self.kind,
            round: raw.round,
            sender: self.me,
            receiver,
            payload: raw.payload,
        });
        Ok(())
    }
}

/// Which rounds of a protocol are broadcast (the rest are p2p). Protocols with rounds that
/// carry both kinds list them in neither and are checked by the library.
pub(crate) struct RoundKinds {
    pub broadcast: &'static [u16],
    pub p2p: &'static [u16],
}

/// Adapts a round-based [`StateMachine`] to [`Driver`].
pub(crate) struct SmDriver<SM: StateMachine, F> {
    sm: SM,
    inbox: VecDeque<Incoming<SM::Msg>>,
    next_id: u64,
    participants: Vec<PartyId>,
    kinds: RoundKinds,
    map_output: Option<F>,
    waiting: bool,
}

impl<SM, F> SmDriver<SM, F>
where
    SM: StateMachine,
{
    pub fn new(sm: SM, participants: Vec<PartyId>, kinds: RoundKinds, map_output: F) -> Self {
        SmDriver {
            sm,
            inbox: VecDeque::new(),
            next_id: 0,
            participants,
            kinds,
            map_output: Some(map_output),
            waiting: false,
        }
    }
}

impl<SM, F, O> Driver<O> for SmDriver<SM, F>
where
    SM: StateMachine,
    SM::Msg: ProtocolMessage + Serialize + DeserializeOwned,
    F: FnOnce(SM::Output, &[PartyId]) -> Result<O, SessionError>,
{
    fn accept(
        &mut self,
        sender: u16,
        broadcast: bool,
        round: u16,
        payload: &[u8],
    ) -> Result<(), Misbehaviour> {
        let msg: SM::Msg = codec::from_cbor(payload, codec::MAX_ENVELOPE_BYTES)
            .map_err(|e| Misbehaviour::Malformed(e.0))?;
        let actual = msg.round();
        if actual != round {
            return Err(Misbehaviour::RoundMismatch {
                claimed: round,
                actual,
            });
        }
        let expected = if self.kinds.broadcast.contains(&round) {
            Some(true)
        } else if self.kinds.p2p.contains(&round) {
            Some(false)
        } else {
            None
        };
        if let Some(expected) = expected.filter(|e| *e != broadcast) {
            let name = |b: bool| if b { "broadcast" } else { "p2p" };
            return Err(Misbehaviour::WrongDelivery {
                round,
                got: name(broadcast),
                expected: name(expected),
            });
        }
        self.inbox.push_back(Incoming {
            id: self.next_id,
            sender,
            msg_type: if broadcast {
                MessageType::Broadcast
            } else {
                MessageType::P2P
            },
            msg,
        });
        self.next_id += 1;
        Ok(())
    }

    fn step(&mut self) -> DriverStep<O> {
        loop {
            if self.waiting {
                let Some(msg) = self.inbox.pop_front() else {
                    return DriverStep::NeedMessage;
                };
                if self.sm.received_msg(msg).is_err() {
                    return DriverStep::Done(Err(SessionError::Local(
                        "state machine refused a message it asked for".into(),
                    )));
                }
                self.waiting = false;
            }
            match self.sm.proceed() {
                ProceedResult::SendMsg(out) => {
                    let to = match out.recipient {
                        MessageDestination::AllParties => None,
                        MessageDestination::OneParty(j) => Some(j),
                    };
                    return DriverStep::Send(RawOut {
                        to,
                        round: out.msg.round(),
                        payload: codec::to_cbor(&out.msg),
                    });
                }
                ProceedResult::NeedsOneMoreMessage => self.waiting = true,
                ProceedResult::Yielded => {}
                ProceedResult::Output(o) => {
                    return DriverStep::Done(match self.map_output.take() {
                        Some(f) => f(o, &self.participants),
                        None => Err(SessionError::Finished),
                    });
                }
                ProceedResult::Error(e) => {
                    return DriverStep::Done(Err(SessionError::Local(format!(
                        "state machine: {e}"
                    ))));
                }
            }
        }
    }
}

/// Maps a library result, turning its error into [`SessionError`] with culprits.
pub(crate) fn library_result<T, E>(
    r: Result<T, E>,
    participants: &[PartyId],
) -> Result<T, SessionError>
where
    E: std::error::Error + 'static,
{
    r.map_err(|e| SessionError::from_library(&e, participants))
}
