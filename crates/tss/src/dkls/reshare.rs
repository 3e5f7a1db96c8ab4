//! DKLs23 refresh and repair.
//!
//! **Refresh** is the library's *complete* refresh (`refresh_complete_phase1..4`): a DKG whose
//! polynomials have a zero constant term, added to every share, plus fresh zero-share seeds and
//! OT setup for every pair; public key and chain code stay, and the new shares carry a new
//! session id, so a share from before the refresh cannot sign with refreshed ones. All `n`
//! parties take part. (The library's faster refresh reuses the OT state; it is not used: the
//! complete one is the only one valid after a repair, and one refresh path is enough.)
//!
//! **Repair** is the library's `repair_term` / `repair_assemble`, then the complete refresh, in
//! one run, as the library prescribes: every other party (the helpers, at least `t`) sends the
//! lost party a masked term; the lost party adds them up to its share (checked against its
//! verifying share) and, holding no pairwise state yet, joins the refresh that rebuilds it for
//! everyone. Every party ends with a new share; helpers must replace their old ones.

use std::collections::BTreeMap;

use dkls23::protocols::dkg::{
    KeepInitMulPhase3to4, KeepInitZeroSharePhase2to3, KeepInitZeroSharePhase3to4, ProofCommitment,
    TransmitInitZeroSharePhase2to4,
};
use dkls23::protocols::repair::{RepairError, RepairTerm, repair_assemble};
use dkls23::protocols::{PartyIndex, PublicKeyPackage};
use dkls23::utilities::hashes::HashOutput;
use zeroize::Zeroizing;

use super::convert::point33;
use super::driver::{Outgoing, Phases, Progress, Round, from_abort};
use super::share::DklsKeyShare;
use super::wire::Body;
use super::{Curve, Package, Party, dkg_due, dkg_fits, position_of, who};
use crate::codec;
use crate::error::{InputError, Misbehaviour, SessionError};
use crate::party::Committee;

/// Role in a repair run.
pub(super) enum Repair {
    /// Plain refresh: no repair round.
    None,
    /// We hold a share and help rebuild the party at this position.
    Helper { target: u16 },
    /// We lost our share; the key's public key as the caller knows it.
    Target { public_key: [u8; 33] },
}

pub(super) struct Reshare {
    committee: Committee,
    me: u16,
    threshold: u16,
    sid: Vec<u8>,
    repair: Repair,
    party: Option<Party>,
    package: Option<Package>,
    correction: Option<Zeroizing<k256_dkls::Scalar>>,
    own_fragment: Option<Zeroizing<k256_dkls::Scalar>>,
    own_proof: Option<ProofCommitment<Curve>>,
    commits: BTreeMap<u16, HashOutput>,
    zero_kept2: Option<BTreeMap<PartyIndex, KeepInitZeroSharePhase2to3>>,
    zero_kept3: Option<BTreeMap<PartyIndex, KeepInitZeroSharePhase3to4>>,
    mul_kept: Option<BTreeMap<PartyIndex, KeepInitMulPhase3to4<Curve>>>,
    zero2: Vec<TransmitInitZeroSharePhase2to4>,
}

impl Reshare {
    pub fn new(
        committee: &Committee,
        me: u16,
        threshold: u16,
        sid: Vec<u8>,
        repair: Repair,
        share: Option<&DklsKeyShare>,
    ) -> Self {
        Reshare {
            committee: committee.clone(),
            me,
            threshold,
            sid,
            repair,
            party: share.map(|s| s.lib_party().clone()),
            package: share.map(|s| s.package().clone()),
            correction: None,
            own_fragment: None,
            own_proof: None,
            commits: BTreeMap::new(),
            zero_kept2: None,
            zero_kept3: None,
            mul_kept: None,
            zero2: Vec::new(),
        }
    }

    /// Rounds before the refresh's round 0.
    fn base(&self) -> u16 {
        match self.repair {
            Repair::None => 0,
            _ => 1,
        }
    }

    fn party(&self) -> Result<&Party, SessionError> {
        self.party
            .as_ref()
            .ok_or_else(|| SessionError::Local("no share to refresh".into()))
    }

    fn abort(&self) -> impl Fn(dkls23::protocols::Abort) -> SessionError + use<> {
        let parties = self.committee.parties().to_vec();
        move |a| from_abort(a, |i| who(&parties, i))
    }

    /// The refresh's first messages: our zero-constant polynomial at every other party.
    fn fragments(&mut self) -> Result<Vec<Outgoing>, SessionError> {
        let fragments = Zeroizing::new(self.party()?.refresh_complete_phase1());
        let mut out = Vec::new();
        for (j, f) in fragments.iter().enumerate() {
            let j = j as u16;
            if j == self.me {
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

    /// Helpers: the masked term for the lost party.
    fn term(&self, target: u16) -> Result<Vec<Outgoing>, SessionError> {
        let party = self.party()?;
        let package = self
            .package
            .clone()
            .ok_or_else(|| SessionError::Local("no public package".into()))?;
        let index = |pos: u16| -> Result<PartyIndex, SessionError> {
            u8::try_from(pos + 1)
                .ok()
                .and_then(|i| PartyIndex::new(i).ok())
                .ok_or_else(|| SessionError::Local("party index".into()))
        };
        let helpers = (0..self.committee.n())
            .filter(|p| *p != target)
            .map(index)
            .collect::<Result<Vec<_>, _>>()?;
        let term = party
            .repair_term(&helpers, index(target)?, &self.sid)
            .map_err(|e| SessionError::Input(InputError::KeyShare(format!("repair: {e}"))))?;
        Ok(vec![Outgoing {
            to: Some(target),
            body: Body::Term { term, package },
        }])
    }

    /// The lost party: checks the helpers agree on the key's public data, then assembles.
    fn assemble(&mut self, public_key: [u8; 33], msgs: Round) -> Result<(), SessionError> {
        let mut terms: Vec<RepairTerm<Curve>> = Vec::new();
        let mut package: Option<(Vec<u8>, Package)> = None;
        for (sender, body) in msgs.p2p {
            let Body::Term { term, package: p } = body else {
                continue;
            };
            let bytes = codec::to_cbor(&p);
            match &package {
                None => package = Some((bytes, p)),
                Some((first, _)) if *first != bytes => {
                    return Err(SessionError::Aborted {
                        culprits: vec![],
                        detail: format!(
                            "repair helpers disagree on the key's public data (first seen at {})",
                            self.committee.parties()[usize::from(sender)]
                        ),
                    });
                }
                Some(_) => {}
            }
            terms.push(term);
        }
        let (_, package) = package.ok_or_else(|| SessionError::Local("no repair terms".into()))?;
        let pk = point33(package.verifying_key()).map_err(|e| SessionError::Aborted {
            culprits: vec![],
            detail: format!("helpers sent an invalid public key: {e}"),
        })?;
        if pk != public_key
            || u16::from(package.threshold()) != self.threshold
            || u16::from(package.share_count()) != self.committee.n()
        {
            return Err(SessionError::Aborted {
                culprits: vec![],
                detail: "repair helpers describe another key (public key, threshold or size)"
                    .into(),
            });
        }
        let target = u8::try_from(self.me + 1)
            .ok()
            .and_then(|i| PartyIndex::new(i).ok())
            .ok_or_else(|| SessionError::Local("party index".into()))?;
        let party =
            repair_assemble(&package, target, &terms, |_| String::new()).map_err(|e| match e {
                RepairError::ShareMismatch | RepairError::InconsistentTerms => {
                    SessionError::Aborted {
                        culprits: vec![],
                        detail: format!("repair: {e}"),
                    }
                }
                other => SessionError::Local(format!("repair: {other}")),
            })?;
        self.party = Some(party);
        self.package = Some(package);
        Ok(())
    }
}

impl Phases for Reshare {
    type Out = DklsKeyShare;

    fn rounds(&self) -> u16 {
        self.base() + 3
    }

    fn echo(&self) -> bool {
        true
    }

    fn due(&self, round: u16) -> Vec<(u16, bool)> {
        match (&self.repair, round.checked_sub(self.base())) {
            (Repair::Target { .. }, None) => (0..self.committee.n())
                .filter(|p| *p != self.me)
                .map(|p| (p, false))
                .collect(),
            (_, None) => vec![],
            (_, Some(r)) => dkg_due(self.committee.n(), self.me, r),
        }
    }

    fn fits(&self, round: u16, broadcast: bool, body: &Body) -> bool {
        match round.checked_sub(self.base()) {
            None => !broadcast && matches!(body, Body::Term { .. }),
            Some(r) => dkg_fits(r, broadcast, body, false),
        }
    }

    fn start(&mut self) -> Result<Vec<Outgoing>, SessionError> {
        match self.repair {
            Repair::None => self.fragments(),
            Repair::Helper { target } => self.term(target),
            Repair::Target { .. } => Ok(vec![]),
        }
    }

    fn complete(
        &mut self,
        round: u16,
        msgs: Round,
    ) -> Result<Progress<DklsKeyShare>, SessionError> {
        let Some(r) = round.checked_sub(self.base()) else {
            if let Repair::Target { public_key } = self.repair {
                self.assemble(public_key, msgs)?;
            }
            return Ok(Progress::Send(self.fragments()?));
        };
        let abort = self.abort();
        let parties = self.committee.parties().to_vec();
        match r {
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
                let (correction, proof, kept, zero) =
                    self.party()?.refresh_complete_phase2(&self.sid, &fragments);
                self.correction = Some(Zeroizing::new(correction));
                self.zero_kept2 = Some(kept);
                let mut out = vec![Outgoing {
                    to: None,
                    body: Body::Commit {
                        index: proof.index.as_u8(),
                        proof_commitment: proof.commitment,
                        chain_code: None,
                    },
                }];
                self.own_proof = Some(proof);
                for m in zero {
                    out.push(Outgoing {
                        to: Some(position_of(&self.committee, m.parties.receiver)?),
                        body: Body::ZeroCommit(m),
                    });
                }
                Ok(Progress::Send(out))
            }
            1 => {
                for (sender, body) in msgs.broadcast {
                    if let Body::Commit {
                        proof_commitment, ..
                    } = body
                    {
                        self.commits.insert(sender, proof_commitment);
                    }
                }
                for body in msgs.p2p.into_values() {
                    if let Body::ZeroCommit(m) = body {
                        self.zero2.push(m);
                    }
                }
                let kept2 = self
                    .zero_kept2
                    .take()
                    .ok_or_else(|| SessionError::Local("refresh state missing".into()))?;
                let (zero_kept3, zero3, mul_kept, mul3) =
                    self.party()?.refresh_complete_phase3(&self.sid, &kept2);
                self.zero_kept3 = Some(zero_kept3);
                self.mul_kept = Some(mul_kept);
                let proof = self
                    .own_proof
                    .clone()
                    .ok_or_else(|| SessionError::Local("own proof missing".into()))?;
                let mut out = vec![Outgoing {
                    to: None,
                    body: Body::Reveal {
                        proof,
                        chain_code: None,
                    },
                }];
                let mut mul3: BTreeMap<PartyIndex, _> =
                    mul3.into_iter().map(|m| (m.parties.receiver, m)).collect();
                for zero in zero3 {
                    let to = zero.parties.receiver;
                    let mul = mul3.remove(&to).ok_or_else(|| {
                        SessionError::Local("OT setup missing for a party".into())
                    })?;
                    out.push(Outgoing {
                        to: Some(position_of(&self.committee, to)?),
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
                let mut proofs = vec![own_proof];
                for (sender, body) in msgs.broadcast {
                    if let Body::Reveal { proof, .. } = body {
                        if self.commits.get(&sender) != Some(&proof.commitment) {
                            return Err(SessionError::Misbehaved {
                                party: parties[usize::from(sender)],
                                what: Misbehaviour::CommitmentMismatch {
                                    round: self.base() + 1,
                                },
                            });
                        }
                        proofs.push(proof);
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
                let missing = || SessionError::Local("refresh state missing".into());
                let correction = self.correction.take().ok_or_else(missing)?;
                let zero_kept3 = self.zero_kept3.take().ok_or_else(missing)?;
                let mul_kept = self.mul_kept.take().ok_or_else(missing)?;
                let party = self
                    .party()?
                    .refresh_complete_phase4(
                        &self.sid,
                        &correction,
                        &proofs,
                        &zero_kept3,
                        &self.zero2,
                        &zero3,
                        &mul_kept,
                        &mul3,
                    )
                    .map_err(&abort)?;
                let package: &PublicKeyPackage<Curve> =
                    self.package.as_ref().ok_or_else(missing)?;
                let package = package.refresh(&self.sid, &proofs).map_err(|reason| {
                    SessionError::Aborted {
                        culprits: vec![],
                        detail: format!("refreshed public package: {reason}"),
                    }
                })?;
                let share = DklsKeyShare::new(self.committee.clone(), party, package)
                    .map_err(|e| SessionError::Local(e.to_string()))?;
                Ok(Progress::Done(share))
            }
            _ => Err(SessionError::Local(format!("no round {round}"))),
        }
    }
}
