//! What a connection may send before its node has authenticated.
//!
//! [`crate::tls`] wraps every accepted stream in [`Budgeted`] and hands each request the
//! connection's [`ReadBudget`]. The budget is unlimited for ordinary HTTP (the API applies its
//! own body limit); when a request upgrades to the proxy's WebSocket, the budget becomes "what
//! was read so far + [`PRE_AUTH_BYTES`]", and only a verified `Hello` lifts it. A client that
//! sends more before authenticating gets a read error and is disconnected, so an
//! unauthenticated client can make the proxy buffer at most a few KiB of frame data, whatever
//! the WebSocket message size limit (8 MiB for authenticated nodes).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes a WebSocket client may send after the upgrade and before its `Hello` is verified
/// (the `Hello` is under 1 KiB).
pub const PRE_AUTH_BYTES: u64 = 4 * 1024;

/// A connection's read budget (shared by the stream and the request handlers).
#[derive(Clone, Debug)]
pub struct ReadBudget(Arc<Counters>);

#[derive(Debug)]
struct Counters {
    read: AtomicU64,
    limit: AtomicU64,
}

impl Default for ReadBudget {
    fn default() -> Self {
        Self(Arc::new(Counters {
            read: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
        }))
    }
}

impl ReadBudget {
    /// Bytes read from the connection so far.
    pub fn read(&self) -> u64 {
        self.0.read.load(Ordering::SeqCst)
    }

    /// From now on at most `more` further bytes may be read.
    pub fn allow_more(&self, more: u64) {
        self.0
            .limit
            .store(self.read().saturating_add(more), Ordering::SeqCst);
    }

    /// No limit any more (the node authenticated).
    pub fn lift(&self) {
        self.0.limit.store(u64::MAX, Ordering::SeqCst);
    }

    fn left(&self) -> u64 {
        self.0
            .limit
            .load(Ordering::SeqCst)
            .saturating_sub(self.read())
    }
}

/// A stream that stops reading (with an error) once its [`ReadBudget`] is spent.
#[derive(Debug)]
pub struct Budgeted<S> {
    inner: S,
    budget: ReadBudget,
}

impl<S> Budgeted<S> {
    /// Wraps `inner`; returns the stream and its budget.
    pub fn new(inner: S) -> (Self, ReadBudget) {
        let budget = ReadBudget::default();
        (
            Self {
                inner,
                budget: budget.clone(),
            },
            budget,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.budget.left();
        if left == 0 {
            return Poll::Ready(Err(io::Error::other(
                "input limit before authentication exceeded",
            )));
        }
        let before = buf.filled().len();
        if left >= buf.remaining() as u64 {
            let r = Pin::new(&mut self.inner).poll_read(cx, buf);
            let n = buf.filled().len() - before;
            self.budget.0.read.fetch_add(n as u64, Ordering::SeqCst);
            return r;
        }
        // Read at most `left` bytes (a small copy; only while limited).
        let mut tmp = [0u8; PRE_AUTH_BYTES as usize];
        let cap = usize::try_from(left).unwrap_or(usize::MAX).min(tmp.len());
        let mut sub = ReadBuf::new(&mut tmp[..cap]);
        let r = Pin::new(&mut self.inner).poll_read(cx, &mut sub);
        let n = sub.filled().len();
        buf.put_slice(sub.filled());
        self.budget.0.read.fetch_add(n as u64, Ordering::SeqCst);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
