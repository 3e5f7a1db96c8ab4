//! In-memory simulation: several parties' [`Session`]s wired to each other, for tests and the
//! benchmark. Deterministic delivery order (FIFO), an interception hook to drop, duplicate,
//! alter or inject envelopes, and a bounded number of deliveries.

use std::collections::{BTreeMap, VecDeque};

use crate::envelope::Envelope;
use crate::error::SessionError;
use crate::party::PartyId;
use crate::session::{Session, Traffic};

/// Hard cap on deliveries in one simulated run (no protocol here needs more than a few dozen).
pub const MAX_DELIVERIES: usize = 10_000;

/// How a simulated run ended without every party producing output.
#[derive(Debug)]
pub enum SimError {
    /// A party's session failed; the first failure in delivery order.
    Failed {
        /// the party whose session reported it
        at: PartyId,
        /// its error
        error: SessionError,
    },
    /// Nothing left to deliver but some parties have no output (a silent party): for each
    /// unfinished party, whom it still waits for.
    Stalled(Vec<(PartyId, Vec<PartyId>)>),
    /// [`MAX_DELIVERIES`] reached.
    TooManyMessages,
}

/// What happened in a finished run.
#[derive(Debug)]
pub struct SimOutcome<O> {
    /// Each party's output.
    pub outputs: BTreeMap<PartyId, O>,
    /// Each party's traffic.
    pub traffic: BTreeMap<PartyId, Traffic>,
}

/// Runs every session to completion, delivering each envelope (broadcasts copied to every
/// other participant) in order.
pub fn run<O>(sessions: Vec<Session<O>>) -> Result<SimOutcome<O>, SimError> {
    run_with(sessions, |env, _to| vec![env])
}

/// Like [`run`], with `intercept(envelope, receiver)` deciding what the receiver actually gets
/// (nothing, the envelope, a changed copy, or several envelopes).
pub fn run_with<O>(
    sessions: Vec<Session<O>>,
    mut intercept: impl FnMut(Envelope, PartyId) -> Vec<Envelope>,
) -> Result<SimOutcome<O>, SimError> {
    let mut sessions: BTreeMap<PartyId, Session<O>> =
        sessions.into_iter().map(|s| (s.me(), s)).collect();
    let mut queue: VecDeque<(PartyId, Envelope)> = VecDeque::new();
    let mut outputs = BTreeMap::new();

    let parties: Vec<PartyId> = sessions.keys().copied().collect();
    for p in &parties {
        let Some(s) = sessions.get_mut(p) else {
            continue;
        };
        let step = s
            .start()
            .map_err(|error| SimError::Failed { at: *p, error })?;
        route(&mut queue, s.participants(), step.outgoing);
        if let Some(o) = step.output {
            outputs.insert(*p, o);
        }
    }

    let mut deliveries = 0usize;
    while let Some((to, env)) = queue.pop_front() {
        deliveries += 1;
        if deliveries > MAX_DELIVERIES {
            return Err(SimError::TooManyMessages);
        }
        for env in intercept(env, to) {
            let Some(s) = sessions.get_mut(&to) else {
                continue;
            };
            if s.is_finished() {
                continue;
            }
            let step = s
                .handle(env)
                .map_err(|error| SimError::Failed { at: to, error })?;
            let participants = s.participants().to_vec();
            route(&mut queue, &participants, step.outgoing);
            if let Some(o) = step.output {
                outputs.insert(to, o);
            }
        }
    }

    if outputs.len() < sessions.len() {
        let stalled = sessions
            .iter()
            .filter(|(p, _)| !outputs.contains_key(*p))
            .map(|(p, s)| (*p, s.waiting_for()))
            .collect();
        return Err(SimError::Stalled(stalled));
    }
    let traffic = sessions.iter().map(|(p, s)| (*p, s.traffic())).collect();
    Ok(SimOutcome { outputs, traffic })
}

fn route(queue: &mut VecDeque<(PartyId, Envelope)>, participants: &[PartyId], out: Vec<Envelope>) {
    for env in out {
        match env.receiver {
            Some(r) => queue.push_back((r, env)),
            None => {
                for p in participants.iter().filter(|p| **p != env.sender) {
                    queue.push_back((*p, env.clone()));
                }
            }
        }
    }
}
