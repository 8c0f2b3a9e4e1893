//! `spool-bench`: spool beside a direct upstream, measured in one run.
//!
//! Starts a fast local upstream (Rust, instant by default), the `spool`
//! binary in front of it on a fresh SQLite database, and a load generator,
//! then reports:
//! - time to first byte of a streamed response, direct and through spool,
//!   at concurrency 1 and 64, with the ratio spool ÷ direct;
//! - streamed responses and persisted events per second at concurrency 64;
//! - spool's resident memory with N concurrent open streams.
//!
//! Figures are ratios against a baseline measured in the same run: these
//! machines are noisy. Results are printed and written as JSON.

mod upstream;

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Args {
    /// The spool binary (default: next to this one).
    #[arg(long, env = "SPOOL_BIN")]
    spool: Option<std::path::PathBuf>,
    /// Sequential requests for the concurrency-1 latency figures.
    #[arg(long, default_value_t = 300)]
    latency_requests: usize,
    /// Requests for the throughput figure (at `--concurrency`).
    #[arg(long, default_value_t = 2000)]
    throughput_requests: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Tokens per response in the throughput run.
    #[arg(long, default_value_t = 200)]
    tokens: usize,
    /// Concurrent open streams for the memory figure.
    #[arg(long, default_value_t = 1000)]
    open_streams: usize,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench.json")]
    json: std::path::PathBuf,
}

/// The spool process, killed when dropped.
struct Spool {
    child: Child,
    base: String,
    db: std::path::PathBuf,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Spool {
    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS")
    }
}

async fn start_spool(bin: &std::path::Path, upstream: &str) -> anyhow::Result<Spool> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("spool-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("bench.db");
    let child = Command::new(bin)
        .arg("serve")
        .env("SPOOL_ADDR", format!("127.0.0.1:{port}"))
        .env("SPOOL_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("SPOOL_UPSTREAM_URL", upstream)
        .env("SPOOL_SSE_KEEPALIVE_SECS", "0")
        .env("SPOOL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let spool = Spool {
        child,
        base: format!("http://127.0.0.1:{port}"),
        db,
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{}/healthz", spool.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(spool);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("spool did not become healthy")
}

/// One streamed request: time to first body byte and to the end.
#[derive(Debug, Clone, Copy)]
struct Timing {
    first_byte: Duration,
    last_byte: Duration,
}

async fn timed(client: &reqwest::Client, url: &str, body: &str) -> anyhow::Result<Timing> {
    let start = Instant::now();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
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

/// Runs `total` requests, `concurrency` at a time; returns timings and the
/// wall time.
async fn load(
    client: &reqwest::Client,
    url: &str,
    body: &str,
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

fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort();
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Latency {
    p50: Duration,
    p99: Duration,
}

fn latency(timings: &[Timing], pick: fn(&Timing) -> Duration) -> Latency {
    let mut v: Vec<_> = timings.iter().map(pick).collect();
    Latency {
        p50: percentile(&mut v, 0.5),
        p99: percentile(&mut v, 0.99),
    }
}

async fn persisted_events(db: &std::path::Path) -> anyhow::Result<i64> {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await?;
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&pool)
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bin = match &args.spool {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no exe dir")?
            .join("spool"),
    };
    let upstream_addr = upstream::start().await?;
    let upstream = format!("http://{upstream_addr}/v1");
    let spool = start_spool(&bin, &upstream).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .build()?;
    let direct_url = format!("{upstream}/chat/completions");
    let spool_url = format!("{}/v1/responses", spool.base);
    let direct_body = |tokens: usize, delay: u64| {
        json!({"model": format!("t{tokens}d{delay}"), "stream": true,
               "messages": [{"role": "user", "content": "bench"}]})
        .to_string()
    };
    let spool_body = |tokens: usize, delay: u64| {
        json!({"model": format!("t{tokens}d{delay}"), "stream": true, "input": "bench"}).to_string()
    };

    // Warm up both paths (connections, SQLite pages, allocator).
    load(&client, &direct_url, &direct_body(20, 0), 50, 8).await?;
    load(&client, &spool_url, &spool_body(20, 0), 50, 8).await?;

    eprintln!(
        "latency at concurrency 1 ({} requests each)…",
        args.latency_requests
    );
    let (direct_c1, _) = load(
        &client,
        &direct_url,
        &direct_body(20, 0),
        args.latency_requests,
        1,
    )
    .await?;
    let (spool_c1, _) = load(
        &client,
        &spool_url,
        &spool_body(20, 0),
        args.latency_requests,
        1,
    )
    .await?;

    eprintln!(
        "throughput at concurrency {} ({} requests of {} tokens each)…",
        args.concurrency, args.throughput_requests, args.tokens
    );
    let (direct_cn, direct_wall) = load(
        &client,
        &direct_url,
        &direct_body(args.tokens, 0),
        args.throughput_requests,
        args.concurrency,
    )
    .await?;
    let events_before = persisted_events(&spool.db).await?;
    let (spool_cn, spool_wall) = load(
        &client,
        &spool_url,
        &spool_body(args.tokens, 0),
        args.throughput_requests,
        args.concurrency,
    )
    .await?;
    let events = persisted_events(&spool.db).await? - events_before;

    eprintln!("memory with {} open streams…", args.open_streams);
    let idle_rss = spool.rss_kib()?;
    let open_body = spool_body(30, 100);
    let opened = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut peak_rss = idle_rss;
    let streams = futures::stream::iter(0..args.open_streams)
        .map(|_| {
            let (client, url, body, opened) = (
                client.clone(),
                spool_url.clone(),
                open_body.clone(),
                opened.clone(),
            );
            async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                let mut stream = response.bytes_stream();
                let mut counted = false;
                while let Some(chunk) = stream.next().await {
                    chunk?;
                    if !counted {
                        opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        counted = true;
                    }
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.open_streams)
        .collect::<Vec<_>>();
    let sampler = async {
        let mut all_open_rss = None;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let rss = spool.rss_kib().unwrap_or(0);
            peak_rss = peak_rss.max(rss);
            if all_open_rss.is_none()
                && opened.load(std::sync::atomic::Ordering::Relaxed) == args.open_streams
            {
                all_open_rss = Some(rss);
                return all_open_rss;
            }
        }
    };
    let (results, all_open_rss) = tokio::join!(streams, sampler);
    let failed_streams = results.iter().filter(|r| r.is_err()).count();
    let all_open_rss = all_open_rss.unwrap_or(peak_rss);

    let first = |t: &Timing| t.first_byte;
    let last = |t: &Timing| t.last_byte;
    let d1 = latency(&direct_c1, first);
    let s1 = latency(&spool_c1, first);
    let dn = latency(&direct_cn, first);
    let sn = latency(&spool_cn, first);
    let d1_last = latency(&direct_c1, last);
    let s1_last = latency(&spool_c1, last);
    let dn_last = latency(&direct_cn, last);
    let sn_last = latency(&spool_cn, last);
    let direct_rps = args.throughput_requests as f64 / direct_wall.as_secs_f64();
    let spool_rps = args.throughput_requests as f64 / spool_wall.as_secs_f64();
    let events_per_sec = events as f64 / spool_wall.as_secs_f64();
    let per_stream_kib = (all_open_rss.saturating_sub(idle_rss)) as f64 / args.open_streams as f64;

    println!(
        "spool-bench ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "time to first byte (ms)", "direct", "spool", "ratio"
    );
    for (label, d, s) in [
        ("  concurrency 1, p50", d1.p50, s1.p50),
        ("  concurrency 1, p99", d1.p99, s1.p99),
        ("  concurrency 64, p50", dn.p50, sn.p50),
        ("  concurrency 64, p99", dn.p99, sn.p99),
        (
            "time to last byte, concurrency 1, p50",
            d1_last.p50,
            s1_last.p50,
        ),
        (
            "time to last byte, concurrency 64, p50",
            dn_last.p50,
            sn_last.p50,
        ),
        (
            "time to last byte, concurrency 64, p99",
            dn_last.p99,
            sn_last.p99,
        ),
    ] {
        println!(
            "{label:<44} {:>10.3} {:>10.3} {:>8.2}",
            ms(d),
            ms(s),
            ms(s) / ms(d).max(1e-9)
        );
    }
    println!(
        "{:<44} {:>10.0} {:>10.0} {:>8.2}",
        format!(
            "streamed {}-token responses/s at c{}",
            args.tokens, args.concurrency
        ),
        direct_rps,
        spool_rps,
        spool_rps / direct_rps
    );
    println!(
        "{:<44} {:>21.0}",
        "persisted events/s (through the server)", events_per_sec
    );
    println!(
        "{:<44} {:>21}",
        format!("resident memory, idle → {} open streams", args.open_streams),
        format!("{} → {} MiB", idle_rss / 1024, all_open_rss / 1024)
    );
    println!("{:<44} {:>21.1}", "  per open stream (KiB)", per_stream_kib);
    if failed_streams > 0 {
        println!("  ({failed_streams} open streams failed)");
    }

    let report = json!({
        "ttfb_ms": {
            "c1": {"direct_p50": ms(d1.p50), "spool_p50": ms(s1.p50), "direct_p99": ms(d1.p99), "spool_p99": ms(s1.p99)},
            "c64": {"direct_p50": ms(dn.p50), "spool_p50": ms(sn.p50), "direct_p99": ms(dn.p99), "spool_p99": ms(sn.p99)},
        },
        "ttlb_ms": {
            "c1": {"direct_p50": ms(d1_last.p50), "spool_p50": ms(s1_last.p50)},
            "c64": {"direct_p50": ms(dn_last.p50), "spool_p50": ms(sn_last.p50), "direct_p99": ms(dn_last.p99), "spool_p99": ms(sn_last.p99)},
        },
        "throughput": {"tokens": args.tokens, "concurrency": args.concurrency,
            "direct_responses_per_s": direct_rps, "spool_responses_per_s": spool_rps,
            "persisted_events": events, "persisted_events_per_s": events_per_sec},
        "memory": {"open_streams": args.open_streams, "idle_rss_kib": idle_rss,
            "open_rss_kib": all_open_rss, "per_stream_kib": per_stream_kib, "failed_streams": failed_streams},
    });
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&report)?)?;
    eprintln!("wrote {}", args.json.display());
    Ok(())
}
