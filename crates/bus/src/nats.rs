//! The bus on NATS (core NATS, no JetStream), for a platform split over several processes.
//!
//! Subjects (`prefix` is [`DEFAULT_PREFIX`] unless set):
//! - `<prefix>.deliver.<32 hex>`: a [`Delivery`] for one node; the token is the first 16 bytes
//!   of SHA-256 of the node id (node ids are 248 characters). A proxy subscribes to
//!   `<prefix>.deliver.*` and forwards what it holds a connection for (it drops the rest, as
//!   the in-process bus's consumer does); a delivery whose subject is not its node's is dropped.
//! - `<prefix>.events`: every [`ProxyEvent`]; every subscriber gets every event.
//! - `<prefix>.relay.<32 hex>`: a [`Relay`] (a protocol frame for nodes other proxies hold);
//!   the token is of the organization id; every proxy subscribes to `<prefix>.relay.*`.
//!
//! Messages are [`crate::codec`] bytes. **The bus is lossy**: core NATS delivers at most once
//! (a message in flight when a connection drops or the server restarts is gone, and a slow
//! subscriber loses messages), so the platform never relies on one message: tasks carry ids and
//! deadlines, results are deduplicated by task and party, and durable state lives in the
//! database. A message that does not decode is dropped with a warning naming the subject (the
//! bus is untrusted; what a message says is checked where it is used). The client reconnects by
//! itself, without limit, logging each disconnect and reconnect.
//!
//! NATS authentication and TLS are the deployment's (the URL may carry user and password; it is
//! never logged with them).

use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::codec::{self, MAX_MESSAGE_BYTES};
use crate::{
    Bus, BusError, BusFuture, CHANNEL_CAPACITY, Delivery, ProxyEvent, Relay, Subscription,
};

/// The subject prefix of the platform's messages.
pub const DEFAULT_PREFIX: &str = "mpc.v1";

/// How long connecting at start may take before it is an error.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to NATS carrying both flows.
#[derive(Debug, Clone)]
pub struct NatsBus {
    client: Client,
    prefix: String,
}

/// `nats://user:password@host:4222` → `nats://host:4222` (for logs and errors).
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The token of `node_id` in its delivery subject (and of an organization id in its relay
/// subject).
pub fn node_token(node_id: &str) -> String {
    hex::encode(&Sha256::digest(node_id.as_bytes())[..16])
}

impl NatsBus {
    /// Connects to `url` (`nats://host:port`, or several comma-separated) as client `name`,
    /// with the default subject prefix. Fails if no server answers within
    /// [`CONNECT_TIMEOUT`]; after that the client reconnects by itself.
    pub async fn connect(url: &str, name: &str) -> Result<Self, BusError> {
        Self::connect_with_prefix(url, name, DEFAULT_PREFIX).await
    }

    /// [`NatsBus::connect`] with another subject prefix (several platforms on one NATS).
    pub async fn connect_with_prefix(
        url: &str,
        name: &str,
        prefix: &str,
    ) -> Result<Self, BusError> {
        if prefix.is_empty()
            || prefix
                .split('.')
                .any(|t| t.is_empty() || t.contains(['*', '>', ' ']))
        {
            return Err(BusError::Backend(format!(
                "NATS subject prefix {prefix:?} is not a sequence of dot-separated tokens"
            )));
        }
        let shown = redacted(url);
        let logged = shown.clone();
        let client = ConnectOptions::new()
            .name(name)
            .connection_timeout(CONNECT_TIMEOUT)
            .max_reconnects(None)
            .event_callback(move |e| {
                let url = logged.clone();
                async move {
                    match e {
                        Event::Connected => tracing::info!(url = %url, "bus: connected to NATS"),
                        Event::Disconnected => {
                            tracing::warn!(url = %url, "bus: NATS connection lost; reconnecting (messages in flight are lost)")
                        }
                        Event::SlowConsumer(sid) => {
                            tracing::warn!(url = %url, subscription = sid, "bus: NATS dropped messages for a slow subscriber")
                        }
                        other => tracing::warn!(url = %url, "bus: NATS: {other}"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| BusError::Backend(format!("cannot reach NATS at {shown}: {e}")))?;
        let max = client.server_info().max_payload;
        if max < MAX_MESSAGE_BYTES {
            tracing::warn!(
                url = %shown,
                max_payload = max,
                needed = MAX_MESSAGE_BYTES,
                "bus: the NATS server's max_payload is below the platform's largest message; large tasks will be refused (set max_payload in the server's config)"
            );
        }
        Ok(NatsBus {
            client,
            prefix: prefix.to_owned(),
        })
    }

    /// Waits until the server has processed everything this client sent before (its
    /// subscriptions included): a request on a subject nobody serves, answered by the server
    /// itself ("no responders") after the operations before it. (`flush` only writes them.)
    pub async fn sync(&self) -> Result<(), BusError> {
        let subject = format!("{}.sync", self.prefix);
        match self.client.request(subject, Bytes::new()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(BusError::Backend(format!(
                "round trip to the NATS server: {e}"
            ))),
        }
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn deliver_subject(&self, node_id: &str) -> String {
        format!("{}.deliver.{}", self.prefix, node_token(node_id))
    }

    fn events_subject(&self) -> String {
        format!("{}.events", self.prefix)
    }

    async fn send(&self, subject: String, payload: Vec<u8>) -> Result<(), BusError> {
        self.client
            .publish(subject.clone(), Bytes::from(payload))
            .await
            .map_err(|e| BusError::Backend(format!("publish on {subject}: {e}")))
    }

    /// Subscribes to `subject` and forwards each decoded message into a bounded channel.
    async fn forward<T: Send + 'static>(
        &self,
        subject: String,
        decode: impl Fn(&str, &[u8]) -> Result<T, String> + Send + 'static,
    ) -> Result<Subscription<T>, BusError> {
        let mut sub = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| BusError::Backend(format!("subscribe to {subject}: {e}")))?;
        // Returned only once the server has the subscription: what is published after this
        // returns reaches it (unless lost on the way).
        self.sync().await?;
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                match decode(msg.subject.as_str(), &msg.payload) {
                    Ok(v) => {
                        if tx.send(v).await.is_err() {
                            break; // the consumer is gone
                        }
                    }
                    Err(e) => {
                        tracing::warn!(subject = %msg.subject, "bus: message dropped: {e}")
                    }
                }
            }
        });
        Ok(Subscription::new(rx))
    }
}

impl Bus for NatsBus {
    fn deliver(&self, delivery: Delivery) -> BusFuture<'_, ()> {
        Box::pin(async move {
            let subject = self.deliver_subject(&delivery.node_id);
            self.send(subject, codec::encode_delivery(&delivery)).await
        })
    }

    fn subscribe_deliveries(&self) -> BusFuture<'_, Subscription<Delivery>> {
        Box::pin(async move {
            let subject = format!("{}.deliver.*", self.prefix);
            self.forward(subject, |subject, bytes| {
                let d = codec::decode_delivery(bytes).map_err(|e| e.to_string())?;
                let token = node_token(&d.node_id);
                if subject.rsplit('.').next() != Some(token.as_str()) {
                    return Err(format!(
                        "a delivery for node token {token} on another node's subject"
                    ));
                }
                Ok(d)
            })
            .await
        })
    }

    fn publish(&self, event: ProxyEvent) -> BusFuture<'_, ()> {
        Box::pin(async move {
            self.send(self.events_subject(), codec::encode_event(&event))
                .await
        })
    }

    fn subscribe_events(&self) -> BusFuture<'_, Subscription<ProxyEvent>> {
        Box::pin(async move {
            self.forward(self.events_subject(), |_, bytes| {
                codec::decode_event(bytes).map_err(|e| e.to_string())
            })
            .await
        })
    }

    fn shared(&self) -> bool {
        true
    }

    fn relay(&self, relay: Relay) -> BusFuture<'_, ()> {
        Box::pin(async move {
            let subject = format!(
                "{}.relay.{}",
                self.prefix,
                node_token(&relay.organization_id)
            );
            self.send(subject, codec::encode_relay(&relay)).await
        })
    }

    fn subscribe_relays(&self) -> BusFuture<'_, Subscription<Relay>> {
        Box::pin(async move {
            let subject = format!("{}.relay.*", self.prefix);
            self.forward(subject, |subject, bytes| {
                let r = codec::decode_relay(bytes).map_err(|e| e.to_string())?;
                let token = node_token(&r.organization_id);
                if subject.rsplit('.').next() != Some(token.as_str()) {
                    return Err(format!(
                        "a relayed frame for organization token {token} on another organization's subject"
                    ));
                }
                Ok(r)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_tokens_fixed() {
        assert_eq!(
            redacted("nats://user:pw@10.0.0.1:4222"),
            "nats://10.0.0.1:4222"
        );
        assert_eq!(redacted("nats://10.0.0.1:4222"), "nats://10.0.0.1:4222");
        assert_eq!(node_token("n").len(), 32);
        assert_eq!(node_token("n"), node_token("n"));
        assert_ne!(node_token("n"), node_token("m"));
    }
}
