//! The PostgreSQL scenario: spool on a PostgreSQL database beside the
//! SQLite figures of the same run.
//!
//! - persisted appends per second through the group-commit writer into
//!   a `PostgresStore`;
//! - through a whole `spool serve` on PostgreSQL: 200-token responses and
//!   persisted events per second at saturation, and 20-token responses per
//!   second at concurrency 64;
//! - cross-instance delivery: a second instance on the same schema streams
//!   runs executing on the first; each frame's arrival on the second
//!   instance's stream minus its arrival on the first's (which is written
//!   once the event is committed there), p50 and p99.
//!
//! Each run of the scenario works in a schema of its own.

use crate::load;
use crate::process::{Database, Spool};
use crate::report::Row;
use crate::scenarios::{Bench, appends_per_second, p50_p99};
use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use spool_store::PostgresStore;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the scenario is given.
pub struct Settings<'a> {
    pub bin: &'a std::path::Path,
    pub upstream: &'a str,
    pub url: &'a str,
    pub requests: usize,
    pub concurrency: usize,
    /// Runs streamed across instances.
    pub delivery_runs: usize,
}

pub async fn postgres(rows: &mut Vec<Row>, settings: Settings<'_>) -> anyhow::Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let schema = |what: &str| format!("spool_bench_{what}_{}_{stamp}", std::process::id());

    let url = spool_store::postgres::create_schema(settings.url, &schema("store")).await?;
    let store = PostgresStore::open(&url, "bench-store", Duration::from_secs(30)).await?;
    let appends = appends_per_second(Arc::new(store), 500_000, 64).await?;
    rows.push(Row::new(
        "postgres",
        "appends/s, 64 producers, group commit",
        "1/s",
        appends,
    ));

    let url = spool_store::postgres::create_schema(settings.url, &schema("serve")).await?;
    let database = Database::Postgres(url);
    let bench = Bench {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .build()?,
        spool: Spool::start(settings.bin, settings.upstream, &database).await?,
        upstream: settings.upstream.to_owned(),
    };
    bench.warm_up().await?;
    let c = settings.concurrency;
    let total = settings.requests / 4;
    let body = Bench::spool_body(200, 0);
    let before = bench.spool.persisted_events().await?;
    let (_, wall) = load::run(&bench.client, &bench.spool_url(), Some(&body), total, c).await?;
    let events = bench.spool.persisted_events().await? - before;
    rows.push(Row::new(
        "postgres",
        format!("200-token responses/s c{c}"),
        "1/s",
        total as f64 / wall.as_secs_f64(),
    ));
    rows.push(
        Row::new(
            "postgres",
            format!("persisted events/s c{c}"),
            "1/s",
            events as f64 / wall.as_secs_f64(),
        )
        .target(">= 100000"),
    );
    let body = Bench::spool_body(20, 0);
    let total = settings.requests;
    let (_, wall) = load::run(&bench.client, &bench.spool_url(), Some(&body), total, c).await?;
    rows.push(Row::new(
        "postgres",
        format!("20-token responses/s c{c}"),
        "1/s",
        total as f64 / wall.as_secs_f64(),
    ));

    let other = Spool::start(settings.bin, settings.upstream, &database).await?;
    let mut delays = Vec::new();
    for _ in 0..settings.delivery_runs {
        delays.extend(delivery(&bench.client, &bench.spool.base, &other.base).await?);
    }
    anyhow::ensure!(
        !delays.is_empty(),
        "no frame was delivered live to both instances"
    );
    let (p50, p99) = p50_p99(&mut delays);
    rows.push(
        Row::new(
            "postgres",
            "cross-instance delivery p50 (commit on A → frame on B)",
            "ms",
            p50,
        )
        .target(""),
    );
    rows.push(
        Row::new(
            "postgres",
            "cross-instance delivery p99 (commit on A → frame on B)",
            "ms",
            p99,
        )
        .target("<= 10 ms"),
    );
    Ok(())
}

/// One background run on `a` (200 tokens, 2 ms apart) streamed from `a`
/// and from `b` at once: for each frame both saw live, how much later it
/// reached `b`.
async fn delivery(client: &reqwest::Client, a: &str, b: &str) -> anyhow::Result<Vec<Duration>> {
    let created: serde_json::Value = client
        .post(format!("{a}/v1/responses"))
        .json(&json!({"model": "t200d2", "input": "bench", "background": true}))
        .send()
        .await?
        .json()
        .await?;
    let id = created["id"].as_str().context("no id")?.to_owned();
    let path = format!("/v1/responses/{id}?stream=true");
    let (url_a, url_b) = (format!("{a}{path}"), format!("{b}{path}"));
    let (on_a, on_b) = tokio::try_join!(arrivals(client, &url_a), arrivals(client, &url_b))?;
    // Frames that were already stored when a stream connected are replays,
    // not deliveries: only frames both streams received after both were
    // connected count.
    let live_from = on_a.connected.max(on_b.connected);
    let at_b: std::collections::HashMap<&str, Instant> = on_b
        .frames
        .iter()
        .map(|(id, t)| (id.as_str(), *t))
        .collect();
    Ok(on_a
        .frames
        .iter()
        .filter(|(_, t)| *t > live_from)
        .filter_map(|(id, t)| Some(at_b.get(id.as_str())?.saturating_duration_since(*t)))
        .collect())
}

/// When a stream connected and when each of its frames (by SSE id) arrived.
struct Arrivals {
    connected: Instant,
    frames: Vec<(String, Instant)>,
}

async fn arrivals(client: &reqwest::Client, url: &str) -> anyhow::Result<Arrivals> {
    let response = client.get(url).send().await?;
    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
    let connected = Instant::now();
    let mut frames = Vec::new();
    let mut text = String::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let now = Instant::now();
        text.push_str(std::str::from_utf8(&chunk?)?);
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
                frames.push((id.to_owned(), now));
            }
        }
    }
    Ok(Arrivals { connected, frames })
}
