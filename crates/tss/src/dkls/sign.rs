//! DKLs23 signing (Protocol 3.6 of eprint 2023/765): two p2p rounds with the pairwise OT-based
//! multiplications, one broadcast round, then every signer assembles and checks the signature.

use std::collections::BTreeMap;

use dkls23::protocols::PartyIndex;
use dkls23::protocols::signing::{
    Broadcast3to4, KeepPhase1to2, KeepPhase2to3, SignData, UniqueKeep1to2, UniqueKeep2to3,
};

use super::driver::{Outgoing, Phases, Progress, Round, from_abort};
use super::wire::Body;
use super::{Curve, Party, who};
use crate::ecdsa::{EcdsaSignature, finish_signature};
use crate::error::SessionError;
use crate::party::PartyId;

type Kept1 = (
    UniqueKeep1to2<Curve>,
    BTreeMap<PartyIndex, KeepPhase1to2<Curve>>,
);
type Kept2 = (
    UniqueKeep2to3<Curve>,
    BTreeMap<PartyIndex, KeepPhase2to3<Curve>>,
);

pub(super) struct Sign {
    /// the share, derived to the signing path
    party: Party,
    data: SignData,
    /// committee parties (library index − 1 → party)
    committee: Vec<PartyId>,
    /// signer position → library index
    lib_index: Vec<u8>,
    me: u16,
    public_key: [u8; 33],
    digest: [u8; 32],
    kept1: Option<Kept1>,
    kept2: Option<Kept2>,
    x_coord: Option<String>,
    own_broadcast: Option<Broadcast3to4<Curve>>,
}

impl Sign {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        party: Party,
        sign_id: Vec<u8>,
        committee: Vec<PartyId>,
        lib_index: Vec<u8>,
        me: u16,
        public_key: [u8; 33],
        digest: [u8; 32],
    ) -> Result<Self, SessionError> {
        let counterparties = lib_index
            .iter()
            .enumerate()
            .filter(|(pos, _)| *pos != usize::from(me))
            .map(|(_, i)| PartyIndex::new(*i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| SessionError::Local("library index 0".into()))?;
        Ok(Sign {
            party,
            data: SignData {
                sign_id,
                counterparties,
                message_hash: digest,
            },
            committee,
            lib_index,
            me,
            public_key,
            digest,
            kept1: None,
            kept2: None,
            x_coord: None,
            own_broadcast: None,
        })
    }

    fn pos_of(&self, i: PartyIndex) -> Result<u16, SessionError> {
        self.lib_index
            .iter()
            .position(|x| *x == i.as_u8())
            .map(|p| p as u16)
            .ok_or_else(|| SessionError::Local(format!("library addressed non-signer {i}")))
    }
}

impl Phases for Sign {
    type Out = EcdsaSignature;

    fn rounds(&self) -> u16 {
        3
    }

    fn echo(&self) -> bool {
        // Every signer checks the signature it assembles; nothing to agree on beyond that.
        false
    }

    fn due(&self, round: u16) -> Vec<(u16, bool)> {
        let others = (0..self.lib_index.len() as u16).filter(|p| *p != self.me);
        match round {
            0 | 1 => others.map(|p| (p, false)).collect(),
            2 => others.map(|p| (p, true)).collect(),
            _ => vec![],
        }
    }

    fn fits(&self, round: u16, broadcast: bool, body: &Body) -> bool {
        matches!(
            (round, broadcast, body),
            (0, false, Body::Sign1(_)) | (1, false, Body::Sign2(_)) | (2, true, Body::Sign3(_))
        )
    }

    fn start(&mut self) -> Result<Vec<Outgoing>, SessionError> {
        let committee = self.committee.clone();
        let (unique, kept, transmit) = self
            .party
            .sign_phase1(&self.data)
            .map_err(|a| from_abort(a, |i| who(&committee, i)))?;
        self.kept1 = Some((unique, kept));
        transmit
            .into_iter()
            .map(|m| {
                Ok(Outgoing {
                    to: Some(self.pos_of(m.parties.receiver)?),
                    body: Body::Sign1(m),
                })
            })
            .collect()
    }

    fn complete(
        &mut self,
        round: u16,
        msgs: Round,
    ) -> Result<Progress<EcdsaSignature>, SessionError> {
        let committee = self.committee.clone();
        let abort = |a| from_abort(a, |i| who(&committee, i));
        let missing = || SessionError::Local("signing state missing".into());
        match round {
            0 => {
                let received: Vec<_> = msgs
                    .p2p
                    .into_values()
                    .filter_map(|b| match b {
                        Body::Sign1(m) => Some(m),
                        _ => None,
                    })
                    .collect();
                let (unique, kept) = self.kept1.take().ok_or_else(missing)?;
                let (unique, kept, transmit) = self
                    .party
                    .sign_phase2(&self.data, unique, kept, &received)
                    .map_err(abort)?;
                self.kept2 = Some((unique, kept));
                let out = transmit
                    .into_iter()
                    .map(|m| {
                        Ok(Outgoing {
                            to: Some(self.pos_of(m.parties.receiver)?),
                            body: Body::Sign2(m),
                        })
                    })
                    .collect::<Result<_, SessionError>>()?;
                Ok(Progress::Send(out))
            }
            1 => {
                let received: Vec<_> = msgs
                    .p2p
                    .into_values()
                    .filter_map(|b| match b {
                        Body::Sign2(m) => Some(m),
                        _ => None,
                    })
                    .collect();
                let (unique, kept) = self.kept2.take().ok_or_else(missing)?;
                let (x_coord, broadcast) = self
                    .party
                    .sign_phase3(&self.data, unique, kept, &received)
                    .map_err(abort)?;
                self.x_coord = Some(x_coord);
                self.own_broadcast = Some(broadcast.clone());
                Ok(Progress::Send(vec![Outgoing {
                    to: None,
                    body: Body::Sign3(broadcast),
                }]))
            }
            2 => {
                let mut all = vec![self.own_broadcast.take().ok_or_else(missing)?];
                all.extend(msgs.broadcast.into_values().filter_map(|b| match b {
                    Body::Sign3(m) => Some(m),
                    _ => None,
                }));
                let x_coord = self.x_coord.take().ok_or_else(missing)?;
                let (s_hex, _) = self
                    .party
                    .sign_phase4(&self.data, &x_coord, &all, true)
                    .map_err(abort)?;
                let mut r = [0u8; 32];
                let mut s = [0u8; 32];
                hex::decode_to_slice(&x_coord, &mut r)
                    .and_then(|()| hex::decode_to_slice(&s_hex, &mut s))
                    .map_err(|_| {
                        SessionError::Local("library returned a malformed signature".into())
                    })?;
                // k256 (the other generation) verifies it again and finds the recovery id.
                let sig = finish_signature(r, s, &self.public_key, &self.digest)?;
                Ok(Progress::Done(sig))
            }
            _ => Err(SessionError::Local(format!("no round {round}"))),
        }
    }
}
