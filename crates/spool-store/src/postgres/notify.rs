//! Wake-ups between instances, through PostgreSQL itself: `NOTIFY` on two
//! channels of the deployment, heard by a connection of its own that
//! `LISTEN`s.
//!
//! A notification is small and carries no event: `{run} {first} {last}`
//! says events `first..=last` of a run are committed (sent by the
//! transaction that wrote them, so it is delivered only if it committed);
//! `{run}` on the cancel channel asks the instance executing the run to
//! cancel it. Notifications sent while the listening connection is down are
//! lost, so [`Notice::Listening`] marks every (re)connection: whoever waits
//! on a run re-reads it from the table then.

use super::PostgresStore;
use super::error::Error;
use crate::StoreError;
use spool_core::ids::ResponseId;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

/// Notices buffered for the consumer before the listener waits for it.
const NOTICE_CAPACITY: usize = 4096;
/// Longest wait between attempts to reconnect the listener.
const MAX_RECONNECT_WAIT: Duration = Duration::from_secs(2);

/// The channel names of one deployment (one schema).
#[derive(Debug, Clone)]
pub(super) struct Channels {
    pub(super) events: String,
    pub(super) cancel: String,
}

impl Channels {
    /// Channels named by a stable hash of the schema's name: an identifier
    /// with no quoting to get wrong, short enough for any schema name.
    pub(super) fn for_schema(schema: &str) -> Self {
        let key = fnv1a(schema);
        Self {
            events: format!("spool_events_{key:016x}"),
            cancel: format!("spool_cancel_{key:016x}"),
        }
    }
}

/// FNV-1a: stable across builds, so every instance names the same channel.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What another instance (or this one) announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Events `first..=last` of `run` are committed.
    Committed {
        run: ResponseId,
        first: u64,
        last: u64,
    },
    /// A client asked that `run` be cancelled wherever it executes.
    Cancel(ResponseId),
    /// The listener (re)connected: anything announced while it was down
    /// was not heard, so state must be re-read from the tables.
    Listening,
}

/// The notices of a deployment, as they are heard. Dropping this stops
/// the listener.
#[derive(Debug)]
pub struct Notices {
    rx: mpsc::Receiver<Notice>,
}

impl Notices {
    /// The next notice; `None` only once the listener has stopped.
    pub async fn recv(&mut self) -> Option<Notice> {
        self.rx.recv().await
    }
}

impl PostgresStore {
    /// Starts listening on this deployment's channels, on a connection of
    /// its own, reconnected whenever it drops.
    pub fn listen(&self) -> Notices {
        let (tx, rx) = mpsc::channel(NOTICE_CAPACITY);
        let config = self.inner.config.clone();
        let channels = self.inner.channels.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(50);
            while !tx.is_closed() {
                match listen_once(&config, &channels, &tx).await {
                    Ok(()) => wait = Duration::from_millis(50),
                    Err(e) => {
                        tracing::warn!(error = %e.0, "the notification listener lost its connection; reconnecting");
                    }
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_RECONNECT_WAIT);
            }
        });
        Notices { rx }
    }

    /// Asks the instance executing `run` to cancel it.
    pub async fn notify_cancel(&self, run: &ResponseId) -> Result<(), StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT pg_notify($1, $2)")
            .await
            .map_err(Error::from)?;
        client
            .execute(&statement, &[&self.inner.channels.cancel, &run.as_str()])
            .await
            .map_err(Error::from)?;
        Ok(())
    }
}

/// Listens until the connection ends (`Err`) or nobody consumes the
/// notices any more (`Ok`).
async fn listen_once(
    config: &tokio_postgres::Config,
    channels: &Channels,
    tx: &mpsc::Sender<Notice>,
) -> Result<(), Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    // The connection yields notifications only while it is polled; a task
    // polls it and hands them over.
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if heard_tx.send(n).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let listening = client
        .batch_execute(&format!(
            "LISTEN {}; LISTEN {}",
            channels.events, channels.cancel
        ))
        .await;
    if let Err(e) = listening {
        driver.abort();
        return Err(e.into());
    }
    if tx.send(Notice::Listening).await.is_err() {
        driver.abort();
        return Ok(());
    }
    while let Some(n) = heard.recv().await {
        let notice = if n.channel() == channels.events {
            parse_committed(n.payload())
        } else if n.channel() == channels.cancel {
            ResponseId::parse(n.payload()).ok().map(Notice::Cancel)
        } else {
            None
        };
        let Some(notice) = notice else {
            tracing::warn!(
                channel = n.channel(),
                payload = n.payload(),
                "ignored a malformed notification"
            );
            continue;
        };
        if tx.send(notice).await.is_err() {
            driver.abort();
            return Ok(());
        }
    }
    drop(client);
    Err(StoreError::Unavailable("the listening connection closed".into()).into())
}

fn parse_committed(payload: &str) -> Option<Notice> {
    let mut parts = payload.split(' ');
    let run = ResponseId::parse(parts.next()?).ok()?;
    let first = parts.next()?.parse().ok()?;
    let last = parts.next()?.parse().ok()?;
    Some(Notice::Committed { run, first, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_notice_names_the_run_and_its_new_positions() {
        let run = ResponseId::parse("resp_0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            parse_committed(&format!("{} 4 9", run.as_str())),
            Some(Notice::Committed {
                run,
                first: 4,
                last: 9
            })
        );
        assert_eq!(parse_committed("resp_x 4"), None);
    }

    #[test]
    fn each_schema_has_its_own_channels() {
        let (a, b) = (Channels::for_schema("public"), Channels::for_schema("t_1"));
        assert_ne!(a.events, b.events);
        assert_ne!(a.events, a.cancel);
        assert!(a.events.len() < 63);
    }
}
