//! Load generation: streamed requests, timed to first and last byte.

use futures::StreamExt;
use std::time::{Duration, Instant};

/// One streamed request: time to first body byte and to the end.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub first_byte: Duration,
    pub last_byte: Duration,
}

pub async fn timed(
    client: &reqwest::Client,
    url: &str,
    body: Option<&str>,
) -> anyhow::Result<Timing> {
    let start = Instant::now();
    let request = match body {
        Some(body) => client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_owned()),
        None => client.get(url),
    };
    let response = request.send().await?;
    anyhow::ensure!(response.status().is_success(), "HTTP {}", response.status());
    let mut stream = response.bytes_stream();
    let mut first_byte = None;
    while let Some(chunk) = stream.next().await {
        chunk?;
        first_byte.get_or_insert_with(|| start.elapsed());
    }
    let last_byte = start.elapsed();
    Ok(Timing {
        first_byte: first_byte.unwrap_or(last_byte),
        last_byte,
    })
}

/// Runs `total` requests, `concurrency` at a time; returns their timings and
/// the wall time of the whole run.
pub async fn run(
    client: &reqwest::Client,
    url: &str,
    body: Option<&str>,
    total: usize,
    concurrency: usize,
) -> anyhow::Result<(Vec<Timing>, Duration)> {
    let start = Instant::now();
    let timings: Vec<anyhow::Result<Timing>> = futures::stream::iter(0..total)
        .map(|_| timed(client, url, body))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    Ok((timings.into_iter().collect::<anyhow::Result<_>>()?, elapsed))
}

/// Sends `total` requests at a steady `rate` per second whatever the
/// answers do (an open loop), so latency is measured under load without
/// the queueing a closed loop at saturation adds by construction.
pub async fn paced(
    client: &reqwest::Client,
    url: &str,
    body: &str,
    total: usize,
    rate: f64,
) -> anyhow::Result<Vec<Timing>> {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut running = Vec::with_capacity(total);
    for _ in 0..total {
        ticks.tick().await;
        let (client, url, body) = (client.clone(), url.to_owned(), body.to_owned());
        running.push(tokio::spawn(async move {
            timed(&client, &url, Some(&body)).await
        }));
    }
    let mut timings = Vec::with_capacity(total);
    for r in running {
        timings.push(r.await??);
    }
    Ok(timings)
}

/// p50 and p99 of one measure.
#[derive(Debug, Clone, Copy)]
pub struct Percentiles {
    pub p50: Duration,
    pub p99: Duration,
}

pub fn percentiles(timings: &[Timing], pick: fn(&Timing) -> Duration) -> Percentiles {
    let mut v: Vec<_> = timings.iter().map(pick).collect();
    v.sort();
    let at = |p: f64| {
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v.get(i).copied().unwrap_or_default()
    };
    Percentiles {
        p50: at(0.5),
        p99: at(0.99),
    }
}

pub fn first_byte(t: &Timing) -> Duration {
    t.first_byte
}

pub fn last_byte(t: &Timing) -> Duration {
    t.last_byte
}
