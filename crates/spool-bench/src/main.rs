//! `spool-bench`: spool beside a direct upstream, measured in one run.
//!
//! Starts a fast local upstream (Rust, instant tokens unless a scenario asks
//! for a delay), the `spool` binary in front of it on a fresh SQLite
//! database, and a load generator, then runs the scenarios:
//! - `store`: raw appends per second through the store with the server's
//!   group-commit writer;
//! - `latency`: time to first and last byte of a 20-token stream, direct
//!   and through spool, at concurrency 1 and 64, and responses per second;
//! - `paced`: the same streams arriving at a steady rate below saturation
//!   (an open loop), for the latency spool adds under load;
//! - `throughput`: 200-token responses and persisted events per second at
//!   saturation;
//! - `chat`: streamed 20-token chat completions per second at concurrency
//!   64 beside the upstream direct and the Responses figure, and first
//!   byte under a steady load;
//! - `replay`: replaying a finished 10,000-event response;
//! - `open`: many slow streams open at once, memory per stream and CPU;
//! - `websocket`: 20-turn tool-calling conversations over one WebSocket
//!   and over HTTP with `previous_response_id`: latency per turn, beside
//!   the same model calls made straight to the upstream.
//!
//! - `postgres` (with `--postgres URL`): the store, throughput and
//!   20-token figures on PostgreSQL, and the delivery latency of events
//!   from one instance to another on the same database.
//!
//! Figures sit beside a baseline measured in the same run (these machines
//! are noisy). The table is printed and written as JSON.

mod load;
mod postgres;
mod process;
mod report;
mod scenarios;
mod upstream;

use anyhow::Context;
use clap::Parser;
use scenarios::Bench;

#[derive(Debug, Parser)]
struct Args {
    /// The spool binary (default: next to this one).
    #[arg(long, env = "SPOOL_BIN")]
    spool: Option<std::path::PathBuf>,
    /// Scenarios to run, comma-separated.
    #[arg(
        long,
        default_value = "store,latency,paced,chat,throughput,replay,open,websocket,fsync,postgres",
        value_delimiter = ','
    )]
    only: Vec<String>,
    /// Sequential requests for the concurrency-1 figures.
    #[arg(long, default_value_t = 500)]
    sequential: usize,
    /// Requests per run at higher concurrency.
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Concurrency levels of the throughput scenario.
    #[arg(long, default_value = "64,256", value_delimiter = ',')]
    saturation: Vec<usize>,
    /// Requests per second offered in the `paced` scenario.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Concurrent open streams in the `open` scenario. Each takes two
    /// sockets in spool (client and upstream); the default fits an
    /// open-file limit of 20,000.
    #[arg(long, default_value_t = 9_000)]
    open_streams: usize,
    /// Events in the replayed response.
    #[arg(long, default_value_t = 10_000)]
    replay_events: usize,
    /// 20-turn conversations per transport in the `websocket` scenario.
    #[arg(long, default_value_t = 50)]
    conversations: usize,
    /// A PostgreSQL database for the `postgres` scenario (each run makes
    /// its own schemas in it); without it that scenario is skipped.
    #[arg(long, env = "SPOOL_BENCH_DATABASE_URL")]
    postgres: Option<String>,
    /// Runs streamed from a second instance in the `postgres` scenario.
    #[arg(long, default_value_t = 20)]
    delivery_runs: usize,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench.json")]
    json: std::path::PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let run = |name: &str| args.only.iter().any(|s| s == name);
    let mut rows = Vec::new();

    if run("store") {
        eprintln!("store…");
        scenarios::store(&mut rows, 1_000_000, 64).await?;
    }
    let bin = match &args.spool {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no exe dir")?
            .join("spool"),
    };
    let upstream = format!("http://{}/v1", upstream::start().await?);
    let bench = Bench {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .build()?,
        spool: process::Spool::start(&bin, &upstream, &process::Database::Sqlite).await?,
        upstream,
    };
    bench.warm_up().await?;
    if run("latency") {
        eprintln!("latency…");
        bench
            .latency(&mut rows, args.sequential, args.requests, args.concurrency)
            .await?;
    }
    if run("paced") {
        eprintln!("paced latency…");
        bench.paced_latency(&mut rows, args.rate, 3.0).await?;
    }
    if run("chat") {
        eprintln!("chat…");
        bench
            .chat(&mut rows, args.requests, args.concurrency, args.rate)
            .await?;
    }
    if run("throughput") {
        eprintln!("throughput…");
        bench
            .throughput(&mut rows, args.requests / 4, 200, &[args.concurrency, 256])
            .await?;
    }
    if run("replay") {
        eprintln!("replay…");
        bench.replay(&mut rows, args.replay_events, 20).await?;
    }
    if run("open") {
        eprintln!("open streams…");
        bench.open_streams(&mut rows, args.open_streams).await?;
    }
    if run("websocket") {
        eprintln!("websocket…");
        bench.websocket(&mut rows, args.conversations).await?;
    }
    if run("postgres") {
        match &args.postgres {
            Some(url) => {
                eprintln!("postgres…");
                postgres::postgres(
                    &mut rows,
                    postgres::Settings {
                        bin: &bin,
                        upstream: &bench.upstream,
                        url,
                        requests: args.requests,
                        concurrency: args.concurrency,
                        delivery_runs: args.delivery_runs,
                    },
                )
                .await?;
            }
            None => {
                eprintln!("postgres: skipped (give --postgres URL or SPOOL_BENCH_DATABASE_URL)")
            }
        }
    }
    if run("fsync") {
        // The same latency and throughput with SPOOL_DURABILITY=fsync: one
        // disk sync per group-commit batch before clients see its events.
        eprintln!("fsync durability…");
        let fsync = Bench {
            client: bench.client.clone(),
            spool: process::Spool::start_with(
                &bin,
                &bench.upstream,
                &process::Database::Sqlite,
                &[("SPOOL_DURABILITY", "fsync")],
            )
            .await?,
            upstream: bench.upstream.clone(),
        };
        fsync.warm_up().await?;
        let mut measured = Vec::new();
        fsync
            .latency(
                &mut measured,
                args.sequential,
                args.requests,
                args.concurrency,
            )
            .await?;
        fsync.paced_latency(&mut measured, args.rate, 3.0).await?;
        fsync
            .throughput(
                &mut measured,
                args.requests / 4,
                200,
                &[args.concurrency, 256],
            )
            .await?;
        rows.extend(measured.into_iter().map(|mut row| {
            row.scenario = match row.scenario {
                "latency" => "fsync latency",
                "paced" => "fsync paced",
                "throughput" => "fsync throughput",
                other => other,
            };
            row
        }));
    }

    println!(
        "spool-bench on {} cores; direct = the upstream alone, measured in the same run",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    report::print(&rows);
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&report::to_json(&rows))?,
    )?;
    eprintln!("wrote {}", args.json.display());
    Ok(())
}
