//! Who takes part: party ids and their protocol indices.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// A party of a key: one lowercase ASCII letter, `a` for the customer's node, `b`, `c` for the
/// platform's nodes (the guide's `party-id`).
///
/// The party's index at key generation is its position in the key's sorted party list, so every
/// node derives the same indices without talking.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyId(char);

impl PartyId {
    /// Parses `"a"`…`"z"`.
    pub fn new(s: &str) -> Result<Self, InputError> {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c.is_ascii_lowercase() => Ok(PartyId(c)),
            _ => Err(InputError::BadPartyId(s.chars().take(16).collect())),
        }
    }

    /// The letter.
    pub fn as_char(self) -> char {
        self.0
    }
}

impl TryFrom<String> for PartyId {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        PartyId::new(&s)
    }
}

impl From<PartyId> for String {
    fn from(p: PartyId) -> String {
        p.0.to_string()
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The sorted, duplicate-free set of parties sharing a key (size `n`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<PartyId>", into = "Vec<PartyId>")]
pub struct Committee(Vec<PartyId>);

impl Committee {
    /// Sorts the parties; refuses duplicates and sizes outside 2..=16.
    pub fn new(mut parties: Vec<PartyId>) -> Result<Self, InputError> {
        parties.sort();
        if parties.windows(2).any(|w| w[0] == w[1]) {
            return Err(InputError::DuplicateParty);
        }
        if !(2..=16).contains(&parties.len()) {
            return Err(InputError::CommitteeSize(parties.len()));
        }
        Ok(Committee(parties))
    }

    /// Parties in index order.
    pub fn parties(&self) -> &[PartyId] {
        &self.0
    }

    /// Number of parties `n`.
    pub fn n(&self) -> u16 {
        // at most 16, checked in `new`
        self.0.len() as u16
    }

    /// The key-generation index of `p`.
    pub fn index_of(&self, p: PartyId) -> Result<u16, InputError> {
        self.0
            .iter()
            .position(|q| *q == p)
            .map(|i| i as u16)
            .ok_or(InputError::NotAMember(p))
    }

    /// Key-generation indices of `signers` (sorted by party id), checking membership and
    /// duplicates.
    pub fn indices_of(&self, signers: &[PartyId]) -> Result<(Vec<PartyId>, Vec<u16>), InputError> {
        let mut sorted = signers.to_vec();
        sorted.sort();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(InputError::DuplicateParty);
        }
        let idx = sorted
            .iter()
            .map(|p| self.index_of(*p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((sorted, idx))
    }
}

impl TryFrom<Vec<PartyId>> for Committee {
    type Error = InputError;
    fn try_from(v: Vec<PartyId>) -> Result<Self, Self::Error> {
        Committee::new(v)
    }
}

impl From<Committee> for Vec<PartyId> {
    fn from(c: Committee) -> Self {
        c.0
    }
}

/// Parses `"a,b,c"`-style lists (for tests, the bench and config files).
pub fn parties(list: &str) -> Result<Vec<PartyId>, InputError> {
    list.split(',').map(|s| PartyId::new(s.trim())).collect()
}
