//! Errors. "A peer misbehaved" and "we failed" are different variants everywhere.
//!
//! * [`InputError`]: the caller asked for something impossible (bad path, wrong signer set,
//!   stale presignature, unreadable stored share). Our side.
//! * [`SessionError::Misbehaved`]: this layer caught a peer sending something it must not
//!   (malformed payload, another execution's message, a duplicate, a wrong round). Names the peer.
//! * [`SessionError::Aborted`]: the protocol library detected a cheater (invalid ZK proof,
//!   equivocating broadcast, invalid partial signature). Names the peers where the library's
//!   blame says who; empty when the protocol cannot tell.
//! * [`SessionError::BanRequired`]: the protocol library found that a peer cheated in a way that
//!   leaks information about long-lived secret state (DKLs23: a failed OT consistency or
//!   multiplication check). The library requires that the peer is excluded from every later
//!   session with this key; the node's quarantine must make that permanent.
//! * [`SessionError::Local`]: a failure of our own (library bug report, state-machine misuse).

use crate::party::PartyId;

/// The caller's request cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Party ids are single lowercase letters.
    #[error("party id {0:?} is not a single lowercase letter")]
    BadPartyId(String),
    /// A party appears twice.
    #[error("a party appears twice")]
    DuplicateParty,
    /// Committee size outside 2..=16.
    #[error("a key needs 2 to 16 parties, got {0}")]
    CommitteeSize(usize),
    /// A party is not part of the key.
    #[error("party {0} is not a party of this key")]
    NotAMember(PartyId),
    /// Threshold out of range.
    #[error("threshold {t} is impossible with {n} parties (need 2 <= t <= n)")]
    BadThreshold {
        /// requested threshold
        t: u16,
        /// number of parties
        n: u16,
    },
    /// Signing needs exactly `t` signers.
    #[error("signing needs exactly {expected} signers, got {got}")]
    WrongSignerCount {
        /// the key's threshold
        expected: u16,
        /// signers given
        got: usize,
    },
    /// The local party is not among the signers.
    #[error("this party ({0}) is not among the signers")]
    NotASigner(PartyId),
    /// Bad derivation path.
    #[error("bad derivation path: {0}")]
    BadPath(String),
    /// The key share does not fit the request.
    #[error("key share: {0}")]
    KeyShare(String),
    /// The presignature was made before the key's auxiliary info changed.
    #[error(
        "presignature is stale: it was made with auxiliary info {made_with}, the key now has {current}"
    )]
    PresignatureStale {
        /// aux-info fingerprint at presigning
        made_with: String,
        /// current aux-info fingerprint
        current: String,
    },
    /// A stored object (key share, presignature) could not be read.
    #[error("cannot read stored {what}: {reason}")]
    Stored {
        /// what was being read
        what: &'static str,
        /// why it failed
        reason: String,
    },
    /// Message to sign is not acceptable.
    #[error("message: {0}")]
    Message(String),
}

/// What a peer did that this layer refuses (before the protocol library sees it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// The frame belongs to another protocol run.
    #[error("message for another execution")]
    WrongExecution,
    /// The frame names another protocol.
    #[error("message for protocol {got}, this run is {expected}")]
    WrongProtocol {
        /// this run's protocol
        expected: &'static str,
        /// the frame's protocol
        got: String,
    },
    /// The frame is addressed to another party.
    #[error("message addressed to {0:?}")]
    WrongReceiver(Option<PartyId>),
    /// The sender is not a participant of this run (or is ourselves).
    #[error("sender is not a participant of this run")]
    NotAParticipant,
    /// The payload does not decode as a message of this protocol.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The envelope's round does not match the payload's.
    #[error("envelope says round {claimed}, payload is round {actual}")]
    RoundMismatch {
        /// round in the envelope
        claimed: u16,
        /// round of the decoded payload
        actual: u16,
    },
    /// Broadcast sent point-to-point or vice versa.
    #[error("round {round} message sent as {got}, expected {expected}")]
    WrongDelivery {
        /// the round
        round: u16,
        /// how it came
        got: &'static str,
        /// how it should come
        expected: &'static str,
    },
    /// A second message for a round and kind already received (replay or equivocation).
    #[error("second message for round {round} ({kind})")]
    Duplicate {
        /// the round
        round: u16,
        /// broadcast or p2p
        kind: &'static str,
    },
    /// Payload larger than any message of this protocol can be.
    #[error("payload of {0} bytes exceeds the limit")]
    TooLarge(usize),
    /// A partial signature does not match the presignature commitments.
    #[error("invalid partial signature")]
    InvalidPartialSignature,
    /// A message this party was not due to send (a round or kind the protocol does not have,
    /// or a message to a party that expects none from it).
    #[error("unexpected {kind} message for round {round}")]
    Unexpected {
        /// the round
        round: u16,
        /// broadcast or p2p
        kind: &'static str,
    },
    /// A commitment opened in a later round does not match what the sender committed to.
    #[error("opening does not match the commitment of round {round}")]
    CommitmentMismatch {
        /// the round of the commitment
        round: u16,
    },
}

/// Why a protocol run ended without output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A peer sent something this layer refuses.
    #[error("party {party} misbehaved: {what}")]
    Misbehaved {
        /// the peer
        party: PartyId,
        /// what it did
        what: Misbehaviour,
    },
    /// The protocol library aborted because of cheating peers.
    #[error("protocol aborted by {}: {detail}", culprit_list(.culprits))]
    Aborted {
        /// the peers the library blames (empty when it cannot tell)
        culprits: Vec<PartyId>,
        /// the library's account
        detail: String,
    },
    /// The protocol library found that `party` cheated in a way that leaks information about
    /// long-lived secret state; it must be excluded from every later session with this key.
    #[error("party {party} must be excluded from this key's sessions: {detail}")]
    BanRequired {
        /// the cheating peer
        party: PartyId,
        /// the library's account
        detail: String,
    },
    /// The request itself is wrong.
    #[error(transparent)]
    Input(#[from] InputError),
    /// We failed (not a peer's fault).
    #[error("local failure: {0}")]
    Local(String),
    /// The run already ended.
    #[error("the protocol run has already ended")]
    Finished,
}

fn culprit_list(c: &[PartyId]) -> String {
    if c.is_empty() {
        "an unidentified party".into()
    } else {
        c.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl SessionError {
    /// The parties to blame, if any.
    pub fn culprits(&self) -> Vec<PartyId> {
        match self {
            SessionError::Misbehaved { party, .. } => vec![*party],
            SessionError::Aborted { culprits, .. } => culprits.clone(),
            SessionError::BanRequired { party, .. } => vec![*party],
            SessionError::Input(_) | SessionError::Local(_) | SessionError::Finished => vec![],
        }
    }

    /// `true` when a peer caused the failure (as opposed to us or the caller).
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            SessionError::Misbehaved { .. }
                | SessionError::Aborted { .. }
                | SessionError::BanRequired { .. }
        )
    }

    /// The peer that must be excluded from every later session with this key, when the
    /// protocol library demands it ([`SessionError::BanRequired`]).
    pub fn must_ban(&self) -> Option<PartyId> {
        match self {
            SessionError::BanRequired { party, .. } => Some(*party),
            _ => None,
        }
    }

    /// Maps an error of the LFDT protocol libraries.
    ///
    /// Their error types are opaque (private `Reason` enums), so the blame is read from their
    /// `Debug` form: an abort is reported as `Aborted(..)`/`InvalidSig`, and each blamed party
    /// as `faulty_party: <index>`. `participants[index]` maps the protocol index back to a
    /// party. Tests pin this reading, so a library upgrade that changes it fails loudly.
    pub(crate) fn from_library(
        err: &(dyn std::error::Error + 'static),
        participants: &[PartyId],
    ) -> SessionError {
        let debug = format!("{err:?}");
        // cggmp24 wraps every peer-caused failure in an `Aborted` reason (invalid proofs,
        // unreliable broadcast, mismatched Delta); givre reports a signature that fails to
        // aggregate as `InvalidSig`. Everything else is a local failure or bad arguments.
        let peer_fault = ["Aborted", "InvalidSig"].iter().any(|k| debug.contains(k));
        if !peer_fault {
            return SessionError::Local(error_chain(err));
        }
        let mut culprits = Vec::new();
        let mut rest = debug.as_str();
        while let Some(at) = rest.find("faulty_party: ") {
            rest = &rest[at + "faulty_party: ".len()..];
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let Some(p) = digits
                .parse::<usize>()
                .ok()
                .and_then(|i| participants.get(i))
                && !culprits.contains(p)
            {
                culprits.push(*p);
            }
        }
        SessionError::Aborted {
            culprits,
            detail: error_chain(err),
        }
    }
}

/// `outer: inner: innermost` from an error's source chain.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}
