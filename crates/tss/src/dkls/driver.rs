//! Drives a DKLs23 protocol, written as [`Phases`], behind [`Session`](crate::Session).
//!
//! The library exposes each protocol as local phases with communication rounds in between
//! (`phase1` → messages → `phase2` → …); it does no messaging itself. [`RoundDriver`] collects
//! the messages a round is due to bring (known in advance: which peer sends a broadcast and/or a
//! point-to-point message in which round), refuses anything else with a [`Misbehaviour`] naming
//! the sender, and calls the next phase once a round is complete. Messages for later rounds that
//! arrive early wait in the inbox.
//!
//! Protocols whose outputs must agree at every party (key generation, refresh, repair) end with
//! an echo round: each party computes its output (so faults the library can pin on a sender are
//! reported as such), then broadcasts the hash of every broadcast it received (and its own), and
//! releases the output only if all hashes match. That is the reliable-broadcast check the DKLs23
//! paper assumes of the channel (cggmp24 runs the same check inside its protocols).

use std::collections::{BTreeMap, VecDeque};

use dkls23::protocols::{Abort, AbortKind, AbortReason, PartyIndex};
use sha2::{Digest, Sha256};

use super::wire::{Body, WIRE_VERSION, Wire};
use crate::codec;
use crate::envelope::ExecutionId;
use crate::error::{InputError, Misbehaviour, SessionError};
use crate::party::PartyId;
use crate::session::{Driver, DriverStep, RawOut};

/// One outgoing message of a phase: `to` is a participant position, `None` for a broadcast.
pub struct Outgoing {
    pub to: Option<u16>,
    pub body: Body,
}

/// Messages of one complete round, by sender position.
#[derive(Default)]
pub struct Round {
    pub broadcast: BTreeMap<u16, Body>,
    pub p2p: BTreeMap<u16, Body>,
}

pub enum Progress<O> {
    /// The next round's messages.
    Send(Vec<Outgoing>),
    /// The run's result.
    Done(O),
}

/// A DKLs23 protocol as local phases between rounds.
pub trait Phases {
    type Out;
    /// Rounds that carry protocol messages (the echo round, if any, comes after them).
    fn rounds(&self) -> u16;
    /// Whether the run ends with an echo round.
    fn echo(&self) -> bool;
    /// What this party receives in `round`: `(sender position, broadcast)` pairs.
    fn due(&self, round: u16) -> Vec<(u16, bool)>;
    /// Whether `body` is the kind of message due in `round` as `broadcast`/p2p.
    fn fits(&self, round: u16, broadcast: bool, body: &Body) -> bool;
    /// The first round's messages.
    fn start(&mut self) -> Result<Vec<Outgoing>, SessionError>;
    /// Every message due in `round` has arrived: the next round's messages or the output.
    fn complete(&mut self, round: u16, msgs: Round) -> Result<Progress<Self::Out>, SessionError>;
}

/// [`Driver`] for [`Phases`].
pub struct RoundDriver<P: Phases> {
    phases: P,
    eid: ExecutionId,
    me: u16,
    /// participants in position order
    parties: Vec<PartyId>,
    /// participant position → library index (1-based)
    lib_index: Vec<u8>,
    /// round whose messages we wait for
    round: u16,
    started: bool,
    finished: bool,
    inbox: BTreeMap<(u16, u16, bool), Body>,
    outbox: VecDeque<RawOut>,
    /// every broadcast of the run as sent (ours) or received: (round, position) → payload
    broadcasts: BTreeMap<(u16, u16), Vec<u8>>,
    /// the output, held while the echo round runs
    held: Option<P::Out>,
}

impl<P: Phases> RoundDriver<P> {
    pub fn new(
        phases: P,
        eid: ExecutionId,
        me: u16,
        parties: Vec<PartyId>,
        lib_index: Vec<u8>,
    ) -> Self {
        RoundDriver {
            phases,
            eid,
            me,
            parties,
            lib_index,
            round: 0,
            started: false,
            finished: false,
            inbox: BTreeMap::new(),
            outbox: VecDeque::new(),
            broadcasts: BTreeMap::new(),
            held: None,
        }
    }

    fn echo_round(&self) -> Option<u16> {
        self.phases.echo().then(|| self.phases.rounds())
    }

    fn due(&self, round: u16) -> Vec<(u16, bool)> {
        if Some(round) == self.echo_round() {
            (0..self.lib_index.len() as u16)
                .filter(|p| *p != self.me)
                .map(|p| (p, true))
                .collect()
        } else if round < self.phases.rounds() {
            self.phases.due(round)
        } else {
            vec![]
        }
    }

    fn queue(&mut self, round: u16, out: Vec<Outgoing>) {
        for o in out {
            let payload = codec::to_cbor(&Wire {
                v: WIRE_VERSION,
                round,
                body: o.body,
            });
            if o.to.is_none() {
                self.broadcasts.insert((round, self.me), payload.clone());
            }
            self.outbox.push_back(RawOut {
                to: o.to,
                round,
                payload,
            });
        }
    }

    fn take_round(&mut self, round: u16) -> Round {
        let mut r = Round::default();
        for (sender, broadcast) in self.due(round) {
            if let Some(body) = self.inbox.remove(&(round, sender, broadcast)) {
                if broadcast {
                    r.broadcast.insert(sender, body);
                } else {
                    r.p2p.insert(sender, body);
                }
            }
        }
        r
    }

    /// SHA-256 over every broadcast of the protocol rounds, as seen here.
    fn view_hash(&self) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(b"mpc-cosigner/dkls23-echo/v1");
        h.update(self.eid.as_bytes());
        for ((round, pos), payload) in &self.broadcasts {
            if *round >= self.phases.rounds() {
                continue;
            }
            h.update(round.to_be_bytes());
            h.update(pos.to_be_bytes());
            h.update((payload.len() as u64).to_be_bytes());
            h.update(payload);
        }
        h.finalize().to_vec()
    }
}

impl<P: Phases> Driver<P::Out> for RoundDriver<P> {
    fn accept(
        &mut self,
        sender: u16,
        broadcast: bool,
        round: u16,
        payload: &[u8],
    ) -> Result<(), Misbehaviour> {
        let wire: Wire = codec::from_cbor(payload, codec::MAX_ENVELOPE_BYTES)
            .map_err(|e| Misbehaviour::Malformed(e.0))?;
        if wire.v != WIRE_VERSION {
            return Err(Misbehaviour::Malformed(format!(
                "DKLs23 message format {} (this build speaks {WIRE_VERSION})",
                wire.v
            )));
        }
        if wire.round != round {
            return Err(Misbehaviour::RoundMismatch {
                claimed: round,
                actual: wire.round,
            });
        }
        let kind = if broadcast { "broadcast" } else { "p2p" };
        if !self.due(round).contains(&(sender, broadcast)) {
            return Err(Misbehaviour::Unexpected { round, kind });
        }
        let fits = if Some(round) == self.echo_round() {
            matches!(wire.body, Body::Echo(_))
        } else {
            self.phases.fits(round, broadcast, &wire.body)
        };
        if !fits {
            return Err(Misbehaviour::Malformed(format!(
                "a {} message is not what round {round} brings as {kind}",
                wire.body.name()
            )));
        }
        let (from, to) = wire.body.claimed();
        let own = |pos: u16| self.lib_index.get(usize::from(pos)).copied();
        if from.is_some_and(|f| Some(f) != own(sender))
            || to.is_some_and(|t| Some(t) != own(self.me))
        {
            return Err(Misbehaviour::Malformed(format!(
                "the {} message names another sender or receiver than its envelope",
                wire.body.name()
            )));
        }
        if broadcast {
            self.broadcasts.insert((round, sender), payload.to_vec());
        }
        self.inbox.insert((round, sender, broadcast), wire.body);
        Ok(())
    }

    fn step(&mut self) -> DriverStep<P::Out> {
        loop {
            if let Some(out) = self.outbox.pop_front() {
                return DriverStep::Send(out);
            }
            if self.finished {
                return DriverStep::NeedMessage;
            }
            if !self.started {
                self.started = true;
                match self.phases.start() {
                    Ok(out) => self.queue(0, out),
                    Err(e) => return self.fail(e),
                }
                continue;
            }
            let round = self.round;
            let due = self.due(round);
            if !due
                .iter()
                .all(|(s, b)| self.inbox.contains_key(&(round, *s, *b)))
            {
                return DriverStep::NeedMessage;
            }
            let msgs = self.take_round(round);
            if Some(round) == self.echo_round() {
                let mine = self.view_hash();
                let differ: Vec<u16> = msgs
                    .broadcast
                    .iter()
                    .filter(|(_, b)| !matches!(b, Body::Echo(h) if *h == mine))
                    .map(|(p, _)| *p)
                    .collect();
                if !differ.is_empty() {
                    let names: Vec<String> =
                        differ.iter().filter_map(|p| self.party_name(*p)).collect();
                    return self.fail(SessionError::Aborted {
                        culprits: vec![],
                        detail: format!(
                            "broadcasts were not the same for everyone: the views of {} differ from ours",
                            names.join(", ")
                        ),
                    });
                }
                return match self.held.take() {
                    Some(o) => {
                        self.finished = true;
                        DriverStep::Done(Ok(o))
                    }
                    None => self.fail(SessionError::Local("no output to release".into())),
                };
            }
            match self.phases.complete(round, msgs) {
                Ok(Progress::Send(out)) => {
                    self.round += 1;
                    self.queue(self.round, out);
                }
                Ok(Progress::Done(o)) if self.phases.echo() => {
                    self.held = Some(o);
                    let hash = self.view_hash();
                    self.round += 1;
                    self.queue(
                        self.round,
                        vec![Outgoing {
                            to: None,
                            body: Body::Echo(hash),
                        }],
                    );
                }
                Ok(Progress::Done(o)) => {
                    self.finished = true;
                    return DriverStep::Done(Ok(o));
                }
                Err(e) => return self.fail(e),
            }
        }
    }
}

impl<P: Phases> RoundDriver<P> {
    fn fail(&mut self, e: SessionError) -> DriverStep<P::Out> {
        self.finished = true;
        DriverStep::Done(Err(e))
    }

    fn party_name(&self, pos: u16) -> Option<String> {
        self.parties.get(usize::from(pos)).map(|p| p.to_string())
    }
}

/// Maps the library's abort to our error, naming parties through `who` (library index →
/// party). `me` is our own library index: the library sometimes names us when our own state is
/// at fault, which is a local failure.
pub fn from_abort(abort: Abort, who: impl Fn(PartyIndex) -> Option<PartyId>) -> SessionError {
    let me = abort.index;
    let detail = abort.description();
    if let AbortKind::BanCounterparty(p) = abort.kind {
        return match who(p) {
            Some(party) if p != me => SessionError::BanRequired { party, detail },
            _ => SessionError::Local(format!("ban of an unknown party: {detail}")),
        };
    }
    let blame = |p: PartyIndex| -> SessionError {
        match who(p) {
            Some(party) if p != me => SessionError::Aborted {
                culprits: vec![party],
                detail: detail.clone(),
            },
            _ => SessionError::Local(detail.clone()),
        }
    };
    use AbortReason as R;
    match abort.reason {
        R::ProofVerificationFailed { counterparty }
        | R::CommitmentMismatch { counterparty }
        | R::TrivialInstancePoint { counterparty }
        | R::SessionBindingMismatch { counterparty }
        | R::OtConsistencyCheckFailed { counterparty }
        | R::MultiplicationVerificationFailed { counterparty, .. }
        | R::GammaUInconsistency { counterparty }
        | R::ZeroShareDecommitFailed { counterparty } => blame(counterparty),
        R::UnexpectedSender { sender } | R::DuplicateSender { sender } => blame(sender),
        R::MissingCommittedPoint { party }
        | R::ChainCodeCommitmentFailed { party }
        | R::MissingMessageFromParty { party } => blame(party),
        R::PolynomialInconsistency
        | R::SignatureVerificationFailed
        | R::ZeroDenominator
        | R::TrivialPublicKey => SessionError::Aborted {
            culprits: vec![],
            detail,
        },
        R::MissingMulState { .. } => SessionError::Input(InputError::KeyShare(format!(
            "{detail} (a repaired share signs only after the refresh that follows the repair)"
        ))),
        R::InvalidPartyIndex { .. }
        | R::WrongCounterpartyCount { .. }
        | R::DuplicateCounterparty { .. }
        | R::SelfInCounterparties => SessionError::Input(InputError::KeyShare(detail)),
        _ => SessionError::Local(detail),
    }
}
