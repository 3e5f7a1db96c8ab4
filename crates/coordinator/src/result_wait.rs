//! Long polls of `sign_result` (our `waitMs` extension): a caller asks once and is answered
//! when its signing request finishes, instead of asking again and again (each poll is a TLS
//! request, an authentication and a database query).
//!
//! The engine announces every finished request ([`ResultWaits::finished`]); a waiting handler
//! holds a [`Waiter`] (subscribed before it first reads the request, so no finish falls between
//! its read and its wait) and reads the request again when its own finish is announced. It also
//! reads again every [`RECHECK_SHARED`] when coordinators share the database (a request can
//! finish on another coordinator, which announces it only to its own handlers) and every
//! [`RECHECK_LOCAL`] otherwise, as a safety net.
//!
//! Bounded: at most [`MAX_WAITERS`] handlers wait at once (each one an authenticated request
//! holding a small receiver); beyond that a request is answered at once, as a plain poll.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};
use tokio::time::Instant;

/// Handlers that may wait at once, platform process wide.
pub const MAX_WAITERS: usize = 1024;
/// How often a waiter reads its request again when the database is shared.
pub const RECHECK_SHARED: Duration = Duration::from_millis(50);
/// How often a waiter reads its request again when every finish is announced here.
pub const RECHECK_LOCAL: Duration = Duration::from_secs(1);
/// Finish announcements buffered per waiter; one that falls further behind reads again.
const ANNOUNCED: usize = 256;

/// The finish announcements and the waiting slots.
#[derive(Debug)]
pub(crate) struct ResultWaits {
    finished: broadcast::Sender<Arc<str>>,
    slots: Arc<Semaphore>,
    recheck: Duration,
}

impl ResultWaits {
    /// `shared`: other coordinators write the same database.
    pub(crate) fn new(shared: bool) -> Self {
        ResultWaits {
            finished: broadcast::channel(ANNOUNCED).0,
            slots: Arc::new(Semaphore::new(MAX_WAITERS)),
            recheck: if shared {
                RECHECK_SHARED
            } else {
                RECHECK_LOCAL
            },
        }
    }

    /// The signing request `sino_id` has finished (its end is stored).
    pub(crate) fn finished(&self, sino_id: &str) {
        // No receiver: nobody waits.
        let _ = self.finished.send(Arc::from(sino_id));
    }

    /// A waiter, or `None` when [`MAX_WAITERS`] handlers already wait.
    pub(crate) fn waiter(&self) -> Option<Waiter> {
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        Some(Waiter {
            rx: self.finished.subscribe(),
            recheck: self.recheck,
            _slot: slot,
        })
    }
}

/// One waiting handler's subscription.
#[derive(Debug)]
pub(crate) struct Waiter {
    rx: broadcast::Receiver<Arc<str>>,
    recheck: Duration,
    _slot: OwnedSemaphorePermit,
}

impl Waiter {
    /// Returns when `sino_id`'s finish is announced, when announcements were missed, at the
    /// next recheck, or at `until`, whichever comes first: the caller then reads the request.
    pub(crate) async fn wait(&mut self, sino_id: &str, until: Instant) {
        let deadline = until.min(Instant::now() + self.recheck);
        let announced = async {
            loop {
                match self.rx.recv().await {
                    Ok(s) if &*s == sino_id => return,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    // The engine is gone: only the deadline is left.
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        };
        let _ = tokio::time::timeout_at(deadline, announced).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_waiter_wakes_for_its_own_request() {
        let waits = ResultWaits::new(false);
        let mut w = waits.waiter().unwrap();
        let start = Instant::now();
        let until = start + Duration::from_secs(10);
        let waiting = tokio::spawn(async move {
            w.wait("sino-1", until).await;
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        waits.finished("sino-2");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waits.finished("sino-1");
        let woke = waiting.await.unwrap();
        assert_eq!(woke - start, Duration::from_millis(20));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_rechecks_and_stops_at_its_deadline() {
        for (shared, recheck) in [(true, RECHECK_SHARED), (false, RECHECK_LOCAL)] {
            let waits = ResultWaits::new(shared);
            let mut w = waits.waiter().unwrap();
            let start = Instant::now();
            w.wait("sino-1", start + Duration::from_secs(10)).await;
            assert_eq!(Instant::now() - start, recheck);
            let start = Instant::now();
            w.wait("sino-1", start + Duration::from_millis(20)).await;
            assert_eq!(Instant::now() - start, Duration::from_millis(20));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_missed_announcements_reads_again() {
        let waits = ResultWaits::new(false);
        let mut w = waits.waiter().unwrap();
        for i in 0..ANNOUNCED + 1 {
            waits.finished(&format!("other-{i}"));
        }
        let start = Instant::now();
        w.wait("sino-1", start + Duration::from_secs(10)).await;
        assert_eq!(Instant::now(), start);
    }

    #[test]
    fn waiting_slots_are_bounded_and_given_back() {
        let waits = ResultWaits::new(false);
        let held: Vec<Waiter> = (0..MAX_WAITERS).map(|_| waits.waiter().unwrap()).collect();
        assert!(waits.waiter().is_none());
        drop(held);
        assert!(waits.waiter().is_some());
    }
}
