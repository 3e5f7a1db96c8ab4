//! DKLs23 key generation (the library's `DkgSession`, Protocol 9.1 of eprint 2023/602 with the
//! chain-code agreement and the zero-share and OT setup signing needs).

use std::collections::BTreeMap;

use dkls23::DkgSession;
use dkls23::protocols::dkg::{BroadcastDerivationPhase2to4, ProofCommitment};
use dkls23::protocols::{Parameters, PartyIndex};
use dkls23::utilities::hashes::HashOutput;
use zeroize::Zeroizing;

use super::driver::{Outgoing, Phases, Progress, Round, from_abort};
use super::share::DklsKeyShare;
use super::wire::Body;
use super::{Curve, dkg_due, dkg_fits, position_of, who};
use crate::error::{InputError, Misbehaviour, SessionError};
use crate::party::Committee;

pub(super) struct Keygen {
    committee: Committee,
    me: u16,
    session: Option<DkgSession<Curve>>,
    own_fragment: Option<Zeroizing<k256_dkls::Scalar>>,
    own_proof: Option<ProofCommitment<Curve>>,
    commits: BTreeMap<u16, HashOutput>,
    bip2: BTreeMap<PartyIndex, BroadcastDerivationPhase2to4>,
    zero2: Vec<dkls23::protocols::dkg::TransmitInitZeroSharePhase2to4>,
    bip3_own: Option<dkls23::protocols::dkg::BroadcastDerivationPhase3to4>,
}

impl Keygen {
    pub fn new(
        committee: &Committee,
        me: u16,
        threshold: u16,
        session_id: Vec<u8>,
    ) -> Result<Self, InputError> {
        let n = committee.n();
        let bad = || InputError::BadThreshold { t: threshold, n };
        let params = Parameters::new(
            u8::try_from(threshold).map_err(|_| bad())?,
            u8::try_from(n).map_err(|_| bad())?,
        )
        .map_err(|_| bad())?;
        let index = PartyIndex::new(u8::try_from(me + 1).map_err(|_| bad())?).map_err(|_| bad())?;
        Ok(Keygen {
            committee: committee.clone(),
            me,
            session: Some(DkgSession::new(params, index, session_id)),
            own_fragment: None,
            own_proof: None,
            commits: BTreeMap::new(),
            bip2: BTreeMap::new(),
            zero2: Vec::new(),
            bip3_own: None,
        })
    }

    fn session(&mut self) -> Result<&mut DkgSession<Curve>, SessionError> {
        self.session
            .as_mut()
            .ok_or_else(|| SessionError::Local("key generation already finished".into()))
    }

    fn lib_to_pos(&self, i: PartyIndex) -> Result<u16, SessionError> {
        position_of(&self.committee, i)
    }
}

impl Phases for Keygen {
    type Out = DklsKeyShare;

    fn rounds(&self) -> u16 {
        3
    }

    fn echo(&self) -> bool {
        true
    }

    fn due(&self, round: u16) -> Vec<(u16, bool)> {
        dkg_due(self.committee.n(), self.me, round)
    }

    fn fits(&self, round: u16, broadcast: bool, body: &Body) -> bool {
        dkg_fits(round, broadcast, body, true)
    }

    fn start(&mut self) -> Result<Vec<Outgoing>, SessionError> {
        let me = self.me;
        let fragments = Zeroizing::new(self.session()?.phase1());
        let mut out = Vec::new();
        for (j, f) in fragments.iter().enumerate() {
            let j = j as u16;
            if j == me {
                self.own_fragment = Some(Zeroizing::new(*f));
            } else {
                out.push(Outgoing {
                    to: Some(j),
                    body: Body::Fragment(*f),
                });
            }
        }
        Ok(out)
    }

    fn complete(
        &mut self,
        round: u16,
        msgs: Round,
    ) -> Result<Progress<DklsKeyShare>, SessionError> {
        let parties = self.committee.parties().to_vec();
        let abort = |a| from_abort(a, |i| who(&parties, i));
        match round {
            0 => {
                let own = self
                    .own_fragment
                    .take()
                    .ok_or_else(|| SessionError::Local("own fragment missing".into()))?;
                let mut fragments = Zeroizing::new(vec![*own]);
                for body in msgs.p2p.into_values() {
                    if let Body::Fragment(f) = body {
                        fragments.push(f);
                    }
                }
                let (proof, zero, bip) = self.session()?.phase2(&fragments).map_err(abort)?;
                let mut out = vec![Outgoing {
                    to: None,
                    body: Body::Commit {
                        index: proof.index.as_u8(),
                        proof_commitment: proof.commitment,
                        chain_code: Some(bip.clone()),
                    },
                }];
                self.bip2.insert(bip.sender_index, bip);
                self.own_proof = Some(proof);
                for m in zero {
                    out.push(Outgoing {
                        to: Some(self.lib_to_pos(m.parties.receiver)?),
                        body: Body::ZeroCommit(m),
                    });
                }
                Ok(Progress::Send(out))
            }
            1 => {
                for (sender, body) in msgs.broadcast {
                    if let Body::Commit {
                        proof_commitment,
                        chain_code: Some(bip),
                        ..
                    } = body
                    {
                        self.commits.insert(sender, proof_commitment);
                        self.bip2.insert(bip.sender_index, bip);
                    }
                }
                for body in msgs.p2p.into_values() {
                    if let Body::ZeroCommit(m) = body {
                        self.zero2.push(m);
                    }
                }
                let (zero3, mul3, bip3) = self.session()?.phase3().map_err(abort)?;
                let proof = self
                    .own_proof
                    .clone()
                    .ok_or_else(|| SessionError::Local("own proof missing".into()))?;
                let mut out = vec![Outgoing {
                    to: None,
                    body: Body::Reveal {
                        proof,
                        chain_code: Some(bip3.clone()),
                    },
                }];
                self.bip3_own = Some(bip3);
                let mut mul3: BTreeMap<PartyIndex, _> =
                    mul3.into_iter().map(|m| (m.parties.receiver, m)).collect();
                for zero in zero3 {
                    let to = zero.parties.receiver;
                    let mul = mul3.remove(&to).ok_or_else(|| {
                        SessionError::Local("OT setup missing for a party".into())
                    })?;
                    out.push(Outgoing {
                        to: Some(self.lib_to_pos(to)?),
                        body: Body::Init { zero, mul },
                    });
                }
                Ok(Progress::Send(out))
            }
            2 => {
                let own_proof = self
                    .own_proof
                    .take()
                    .ok_or_else(|| SessionError::Local("own proof missing".into()))?;
                let own_bip3 = self
                    .bip3_own
                    .take()
                    .ok_or_else(|| SessionError::Local("own chain code missing".into()))?;
                let mut proofs = vec![own_proof];
                let mut bip3 = BTreeMap::new();
                bip3.insert(own_bip3.sender_index, own_bip3);
                for (sender, body) in msgs.broadcast {
                    if let Body::Reveal {
                        proof,
                        chain_code: Some(cc),
                    } = body
                    {
                        if self.commits.get(&sender) != Some(&proof.commitment) {
                            return Err(SessionError::Misbehaved {
                                party: parties[usize::from(sender)],
                                what: Misbehaviour::CommitmentMismatch { round: 1 },
                            });
                        }
                        proofs.push(proof);
                        bip3.insert(cc.sender_index, cc);
                    }
                }
                let mut zero3 = Vec::new();
                let mut mul3 = Vec::new();
                for body in msgs.p2p.into_values() {
                    if let Body::Init { zero, mul } = body {
                        zero3.push(zero);
                        mul3.push(mul);
                    }
                }
                let session = self
                    .session
                    .take()
                    .ok_or_else(|| SessionError::Local("key generation already finished".into()))?;
                let (party, package) = session
                    .phase4(
                        &proofs,
                        &self.zero2,
                        &zero3,
                        &mul3,
                        &self.bip2,
                        &bip3,
                        |_| String::new(),
                    )
                    .map_err(abort)?;
                let share = DklsKeyShare::new(self.committee.clone(), party, package)
                    .map_err(|e| SessionError::Local(e.to_string()))?;
                Ok(Progress::Done(share))
            }
            _ => Err(SessionError::Local(format!("no round {round}"))),
        }
    }
}
