//! Share generations: which of a key's shares a task uses.
//!
//! A refresh ([`super::refresh`]) stores the new share *beside* the current one
//! ([`KEY_SHARES_NEXT`]) and answers its generation; the current share stays in force. The
//! coordinator switches the key to the new generation only when every party answered the same
//! one, and from then on names it in its tasks. The first task naming it makes the new share
//! current here: one atomic batch writes it over the current record and deletes the waiting
//! one ([`Inner::key_for`]). So a refresh that fails part-way leaves every node with a share
//! that signs: before the switch the old generation is in force everywhere (every node still
//! holds it as current), after it every node holds the new one, current or waiting, and takes
//! it at its next task. Never a mix: a task names exactly one generation and a node answers
//! with that generation's share or refuses naming both.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use mpc_keystore::{Batch, tables};

use super::Inner;
use super::fail::RunFail;
use mpc_tss::InputError;
use mpc_tss::dkls::DklsKeyShare;
use mpc_tss::ecdsa::EcdsaCoreShare;

use crate::store::{Committee, KEY_SHARES_NEXT, StoreAccessError, StoredKey, StoredShare};

/// How a generation is named in messages.
pub(super) fn generation_name(generation: Option<&str>) -> String {
    generation.map_or_else(
        || "the key generation's".to_owned(),
        |g| format!("generation {g}"),
    )
}

impl Inner {
    /// The record of `key_id` holding the share of `generation` (`None`: the key generation's),
    /// promoting the waiting refreshed share when the task names its generation. Blocking.
    pub(super) fn key_for(
        &self,
        key_id: &str,
        generation: Option<&str>,
    ) -> Result<Arc<KeyRecord>, RunFail> {
        // Promotions and the writes of waiting shares never interleave (a refresh of the key
        // that starts now promotes first, then writes its own waiting share at its end).
        let mut cache = self
            .shares
            .lock()
            .map_err(|_| RunFail::Local("share lock poisoned".into()))?;
        if let Some(k) = cache.get(key_id)
            && k.generation.as_deref() == generation
        {
            return Ok(k);
        }
        // The generation of the current share (`None`: no share of this key here, e.g. the
        // node a repair rebuilds the party's share on).
        let held: Option<Option<String>> =
            match self.store.get(tables::KEY_SHARES, key_id.as_bytes())? {
                Some(bytes) => {
                    let current = StoredKey::from_bytes(key_id, &bytes)?;
                    if current.generation.as_deref() == generation {
                        return Ok(cache.insert(key_id, current));
                    }
                    Some(current.generation.clone())
                }
                None => None,
            };
        let refuse = || match &held {
            Some(current) => RunFail::BadTask(format!(
                "the task names {} shares of key {key_id}, but this node holds {} (and no waiting share of the named one)",
                generation_name(generation),
                generation_name(current.as_deref()),
            )),
            None => RunFail::BadTask(format!(
                "unknown key {key_id} (no share of {} here)",
                generation_name(generation)
            )),
        };
        let Some(wanted) = generation else {
            return Err(refuse());
        };
        let Some(bytes) = self.store.get(KEY_SHARES_NEXT, key_id.as_bytes())? else {
            return Err(refuse());
        };
        let next = StoredKey::from_bytes(key_id, &bytes)?;
        if next.generation.as_deref() != Some(wanted) {
            return Err(refuse());
        }
        let mut batch = Batch::new();
        batch
            .put(tables::KEY_SHARES, key_id.as_bytes(), &bytes)
            .delete(KEY_SHARES_NEXT, key_id.as_bytes());
        self.store.apply(&batch)?;
        tracing::info!(
            key_id = %key_id,
            generation = %wanted,
            previous = %held.as_ref().map_or_else(|| "none".to_owned(), |g| generation_name(g.as_deref())),
            "refreshed key share is now current; the previous share is deleted"
        );
        Ok(cache.insert(key_id, next))
    }

    /// The committee a task naming `generation` must match, read-only: the waiting share's
    /// when it is of that generation, else the current one's (a task naming another generation
    /// is refused by [`Inner::key_for`] later). `None`: no share here. Admission reads this
    /// for every task: from the records kept in memory when there, else from the store
    /// without decoding the shares. Blocking.
    pub(super) fn committee_of(
        &self,
        key_id: &str,
        generation: Option<&str>,
    ) -> Result<Option<Committee>, StoreAccessError> {
        if let Ok(cache) = self.shares.lock()
            && let Some(k) = cache.get(key_id)
            && k.generation.as_deref() == generation
        {
            return Ok(Some(k.committee.clone()));
        }
        if generation.is_some()
            && let Some(bytes) = self.store.get(KEY_SHARES_NEXT, key_id.as_bytes())?
        {
            let (committee, next) = StoredKey::meta_from_bytes(key_id, &bytes)?;
            if next.as_deref() == generation {
                return Ok(Some(committee));
            }
        }
        match self.store.get(tables::KEY_SHARES, key_id.as_bytes())? {
            Some(bytes) => Ok(Some(StoredKey::meta_from_bytes(key_id, &bytes)?.0)),
            None => Ok(None),
        }
    }

    /// Stores a new key's record as `key_id`'s current share (key generation), refusing a key
    /// id that exists here. Blocking.
    pub(super) fn put_new_key(&self, key_id: &str, key: &StoredKey) -> Result<(), RunFail> {
        let mut cache = self
            .shares
            .lock()
            .map_err(|_| RunFail::Local("share lock poisoned".into()))?;
        if self
            .store
            .get(tables::KEY_SHARES, key_id.as_bytes())?
            .is_some()
        {
            return Err(RunFail::BadTask(format!(
                "key {key_id} already exists on this node"
            )));
        }
        let bytes = key.to_bytes()?;
        self.store
            .put(tables::KEY_SHARES, key_id.as_bytes(), &bytes)?;
        cache.forget(key_id);
        Ok(())
    }

    /// Stores `key` (a refreshed share with its generation) as `key_id`'s waiting share,
    /// replacing an earlier waiting one. Blocking.
    pub(super) fn put_waiting(&self, key_id: &str, key: &StoredKey) -> Result<(), RunFail> {
        let _serial = self
            .shares
            .lock()
            .map_err(|_| RunFail::Local("share lock poisoned".into()))?;
        let bytes = key.to_bytes()?;
        self.store.put(KEY_SHARES_NEXT, key_id.as_bytes(), &bytes)?;
        Ok(())
    }
}

/// Current key records as last read or written here, decrypted and decoded, so that a
/// signature does not decrypt and decode its key's record again (a DKLs23 record is about
/// 280 KB). Lives behind [`Inner`]'s share lock, which also orders every write of
/// [`tables::KEY_SHARES`]: promotions replace their key's entry, a new key's write removes
/// it. Shares are zeroized when the last holder lets go (`StoredShare`'s `Drop`). At most
/// [`ShareCache::MAX`] keys (a DKLs23 key takes about 0.3 MB here with its decoded forms);
/// when full it starts over.
#[derive(Default)]
pub(super) struct ShareCache(HashMap<String, Arc<KeyRecord>>);

impl ShareCache {
    /// Keys kept at most.
    pub(super) const MAX: usize = 64;

    fn get(&self, key_id: &str) -> Option<Arc<KeyRecord>> {
        self.0.get(key_id).cloned()
    }

    fn insert(&mut self, key_id: &str, key: StoredKey) -> Arc<KeyRecord> {
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        let key = Arc::new(KeyRecord {
            key,
            dkls: OnceLock::new(),
            schnorr: OnceLock::new(),
        });
        self.0.insert(key_id.to_owned(), key.clone());
        key
    }

    fn forget(&mut self, key_id: &str) {
        self.0.remove(key_id);
    }
}

/// A current key record with the protocol forms of its share, each decoded (and checked) at
/// its first use: a DKLs23 share's `DklsKeyShare` and the Schnorr (FROST) share made from it.
/// The library types wipe their secrets on drop.
pub(super) struct KeyRecord {
    key: StoredKey,
    dkls: OnceLock<Arc<DklsKeyShare>>,
    schnorr: OnceLock<Arc<EcdsaCoreShare>>,
}

impl std::ops::Deref for KeyRecord {
    type Target = StoredKey;
    fn deref(&self) -> &StoredKey {
        &self.key
    }
}

impl KeyRecord {
    /// The DKLs23 share (`None`: not a DKLs23 key).
    pub(super) fn dkls(&self) -> Result<Option<Arc<DklsKeyShare>>, InputError> {
        let StoredShare::Dkls23 { share } = &self.key.share else {
            return Ok(None);
        };
        if let Some(d) = self.dkls.get() {
            return Ok(Some(d.clone()));
        }
        let d = Arc::new(DklsKeyShare::from_stored_bytes(share)?);
        Ok(Some(self.dkls.get_or_init(|| d).clone()))
    }

    /// The Schnorr share of a DKLs23 key (BIP340, Taproot).
    pub(super) fn dkls_schnorr(&self) -> Result<Option<Arc<EcdsaCoreShare>>, InputError> {
        if let Some(c) = self.schnorr.get() {
            return Ok(Some(c.clone()));
        }
        let Some(d) = self.dkls()? else {
            return Ok(None);
        };
        let c = Arc::new(d.schnorr_share()?);
        Ok(Some(self.schnorr.get_or_init(|| c).clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::test_support::runtime;

    fn record(share: u8, generation: Option<&str>) -> StoredKey {
        StoredKey {
            committee: committee(share),
            share: StoredShare::Dkls23 { share: vec![share] },
            generation: generation.map(str::to_owned),
        }
    }

    /// A committee that tells which record it was stored with.
    fn committee(share: u8) -> Committee {
        Committee::Pinned(
            [("a", "sinoA".to_owned()), ("b", format!("sinoB{share}"))]
                .into_iter()
                .map(|(p, n)| (p.to_owned(), n))
                .collect(),
        )
    }

    fn share_of(k: &StoredKey) -> u8 {
        match &k.share {
            StoredShare::Dkls23 { share } => share[0],
            _ => panic!("not a DKLs23 share"),
        }
    }

    /// The current share serves its own generation; a waiting share becomes current (once,
    /// atomically) at the first task naming its generation; anything else is refused naming
    /// both generations, and nothing changes.
    #[test]
    fn a_waiting_share_becomes_current_when_its_generation_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, _) = runtime(dir.path(), 1);
        let inner = &rt.inner;
        let e = inner.key_for("k", None).err().unwrap();
        assert!(
            matches!(e, RunFail::BadTask(ref d) if d.contains("unknown key k")),
            "{e:?}"
        );
        inner
            .store
            .put(
                tables::KEY_SHARES,
                b"k",
                &record(1, None).to_bytes().unwrap(),
            )
            .unwrap();
        assert_eq!(share_of(&inner.key_for("k", None).unwrap()), 1);
        // Read once, then served decoded from memory.
        assert!(Arc::ptr_eq(
            &inner.key_for("k", None).unwrap(),
            &inner.key_for("k", None).unwrap()
        ));
        // A refresh finished here; the coordinator has not switched yet.
        inner.put_waiting("k", &record(2, Some("g2"))).unwrap();
        assert_eq!(inner.committee_of("k", None).unwrap(), Some(committee(1)));
        assert_eq!(
            inner.committee_of("k", Some("g2")).unwrap(),
            Some(committee(2))
        );
        assert_eq!(
            inner.committee_of("k", Some("g9")).unwrap(),
            Some(committee(1))
        );
        assert_eq!(share_of(&inner.key_for("k", None).unwrap()), 1);
        let e = inner.key_for("k", Some("g9")).err().unwrap();
        assert!(
            matches!(e, RunFail::BadTask(ref d) if d.contains("generation g9") && d.contains("the key generation's")),
            "{e:?}"
        );
        // The switch: the first task naming g2 promotes it.
        let k = inner.key_for("k", Some("g2")).unwrap();
        assert_eq!((share_of(&k), k.generation.as_deref()), (2, Some("g2")));
        assert!(inner.store.get(KEY_SHARES_NEXT, b"k").unwrap().is_none());
        assert_eq!(share_of(&inner.key_for("k", Some("g2")).unwrap()), 2);
        // The old generation is gone for good (also from memory).
        let e = inner.key_for("k", None).err().unwrap();
        assert!(
            matches!(e, RunFail::BadTask(ref d) if d.contains("generation g2")),
            "{e:?}"
        );
    }

    /// A node a repair rebuilt a share on may hold no share of the key at all: the waiting one
    /// becomes current at the first task naming its generation, and nothing is served before.
    #[test]
    fn a_waiting_share_without_a_current_one_is_promoted_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let (rt, _) = runtime(dir.path(), 1);
        let inner = &rt.inner;
        inner.put_waiting("k", &record(7, Some("g7"))).unwrap();
        assert!(inner.committee_of("k", None).unwrap().is_none());
        assert_eq!(
            inner.committee_of("k", Some("g7")).unwrap(),
            Some(committee(7))
        );
        let e = inner.key_for("k", None).err().unwrap();
        assert!(
            matches!(e, RunFail::BadTask(ref d) if d.contains("unknown key k")),
            "{e:?}"
        );
        let k = inner.key_for("k", Some("g7")).unwrap();
        assert_eq!((share_of(&k), k.generation.as_deref()), (7, Some("g7")));
        assert!(inner.store.get(KEY_SHARES_NEXT, b"k").unwrap().is_none());
        assert_eq!(
            inner.committee_of("k", Some("g7")).unwrap(),
            Some(committee(7))
        );
    }

    /// A DKLs23 record's share and its Schnorr form are decoded once and kept with it; other
    /// shares have none; a record that does not decode says so.
    #[test]
    fn a_records_protocol_shares_are_decoded_once() {
        let dkls = include_bytes!("../../../tss/tests/fixtures/dkls23-share-a.json").to_vec();
        let mut cache = ShareCache::default();
        let rec = cache.insert(
            "k",
            StoredKey {
                committee: committee(1),
                share: StoredShare::Dkls23 { share: dkls },
                generation: None,
            },
        );
        let a = rec.dkls().unwrap().unwrap();
        assert!(Arc::ptr_eq(&a, &rec.dkls().unwrap().unwrap()));
        let s = rec.dkls_schnorr().unwrap().unwrap();
        assert!(Arc::ptr_eq(&s, &rec.dkls_schnorr().unwrap().unwrap()));
        assert_eq!(s.public_key(), a.public_key());
        let ed = cache.insert(
            "e",
            StoredKey {
                committee: committee(2),
                share: StoredShare::Ed25519 { share: vec![1] },
                generation: None,
            },
        );
        assert!(ed.dkls().unwrap().is_none() && ed.dkls_schnorr().unwrap().is_none());
        let bad = cache.insert("b", record(3, None));
        assert!(bad.dkls().is_err() && bad.dkls_schnorr().is_err());
    }
}
