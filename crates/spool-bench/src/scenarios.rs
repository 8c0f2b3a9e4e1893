//! The benchmark scenarios. Each appends its figures to the report.

use crate::load::{self, first_byte, last_byte, percentiles};
use crate::process::Spool;
use crate::report::Row;
use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_server::runtime::bus::LocalBus;
use spool_server::runtime::writer::Writer;
use spool_store::{SqliteStore, Store, WriteOp};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What every HTTP scenario needs.
pub struct Bench {
    pub client: reqwest::Client,
    pub spool: Spool,
    pub upstream: String,
}

impl Bench {
    fn direct_url(&self) -> String {
        format!("{}/chat/completions", self.upstream)
    }

    pub fn spool_url(&self) -> String {
        format!("{}/v1/responses", self.spool.base)
    }

    /// The model name tells the bench upstream what to stream.
    fn direct_body(tokens: usize, delay_ms: u64) -> String {
        json!({"model": format!("t{tokens}d{delay_ms}"), "stream": true,
               "messages": [{"role": "user", "content": "bench"}]})
        .to_string()
    }

    pub fn spool_body(tokens: usize, delay_ms: u64) -> String {
        json!({"model": format!("t{tokens}d{delay_ms}"), "stream": true, "input": "bench"})
            .to_string()
    }

    pub async fn warm_up(&self) -> anyhow::Result<()> {
        load::run(
            &self.client,
            &self.direct_url(),
            Some(&Self::direct_body(20, 0)),
            100,
            8,
        )
        .await?;
        load::run(
            &self.client,
            &self.spool_url(),
            Some(&Self::spool_body(20, 0)),
            100,
            8,
        )
        .await?;
        Ok(())
    }

    /// Added latency: first and last byte of a 20-token stream, direct and
    /// through spool, at concurrency 1 and `concurrency`; at the higher
    /// concurrency also responses per second.
    pub async fn latency(
        &self,
        rows: &mut Vec<Row>,
        sequential: usize,
        total: usize,
        concurrency: usize,
    ) -> anyhow::Result<()> {
        let (direct, spool) = (Self::direct_body(20, 0), Self::spool_body(20, 0));
        for (c, n) in [(1, sequential), (concurrency, total)] {
            let (d, d_wall) =
                load::run(&self.client, &self.direct_url(), Some(&direct), n, c).await?;
            let (s, s_wall) =
                load::run(&self.client, &self.spool_url(), Some(&spool), n, c).await?;
            let (df, sf) = (percentiles(&d, first_byte), percentiles(&s, first_byte));
            let (dl, sl) = (percentiles(&d, last_byte), percentiles(&s, last_byte));
            let high = c > 1;
            rows.push(
                Row::new("latency", format!("first byte c{c} p50"), "ms", ms(sf.p50))
                    .direct(ms(df.p50))
                    .target(if high { "added <= 1 ms" } else { "" }),
            );
            rows.push(
                Row::new("latency", format!("first byte c{c} p99"), "ms", ms(sf.p99))
                    .direct(ms(df.p99))
                    .target(if high { "added <= 5 ms" } else { "" }),
            );
            rows.push(
                Row::new("latency", format!("last byte c{c} p50"), "ms", ms(sl.p50))
                    .direct(ms(dl.p50)),
            );
            rows.push(
                Row::new("latency", format!("last byte c{c} p99"), "ms", ms(sl.p99))
                    .direct(ms(dl.p99)),
            );
            if high {
                rows.push(
                    Row::new(
                        "latency",
                        format!("20-token responses/s c{c}"),
                        "1/s",
                        n as f64 / s_wall.as_secs_f64(),
                    )
                    .direct(n as f64 / d_wall.as_secs_f64())
                    .target(">= 2000"),
                );
            }
        }
        Ok(())
    }

    /// The chat dialect: streamed 20-token chat completions per second at
    /// `concurrency` through `POST /v1/chat/completions` (each one a run in
    /// a new thread), beside the upstream called directly and beside the
    /// same streams through `POST /v1/responses`; then first byte under a
    /// steady `rate` below saturation.
    pub async fn chat(
        &self,
        rows: &mut Vec<Row>,
        total: usize,
        concurrency: usize,
        rate: f64,
    ) -> anyhow::Result<()> {
        let chat_url = format!("{}/v1/chat/completions", self.spool.base);
        // The same body as the direct call: the chat API is the upstream's.
        let chat = Self::direct_body(20, 0);
        let direct = Self::direct_body(20, 0);
        let responses = Self::spool_body(20, 0);
        let (_, d_wall) = load::run(
            &self.client,
            &self.direct_url(),
            Some(&direct),
            total,
            concurrency,
        )
        .await?;
        let (_, r_wall) = load::run(
            &self.client,
            &self.spool_url(),
            Some(&responses),
            total,
            concurrency,
        )
        .await?;
        let (_, c_wall) =
            load::run(&self.client, &chat_url, Some(&chat), total, concurrency).await?;
        rows.push(
            Row::new(
                "chat",
                format!("20-token chat completions/s c{concurrency}"),
                "1/s",
                total as f64 / c_wall.as_secs_f64(),
            )
            .direct(total as f64 / d_wall.as_secs_f64())
            .target("within 10% of the Responses row"),
        );
        rows.push(
            Row::new(
                "chat",
                format!("20-token responses/s c{concurrency} (Responses)"),
                "1/s",
                total as f64 / r_wall.as_secs_f64(),
            )
            .direct(total as f64 / d_wall.as_secs_f64()),
        );
        let paced_total = (rate * 3.0) as usize;
        let d = load::paced(&self.client, &self.direct_url(), &direct, paced_total, rate).await?;
        let c = load::paced(&self.client, &chat_url, &chat, paced_total, rate).await?;
        let (df, cf) = (percentiles(&d, first_byte), percentiles(&c, first_byte));
        let label = format!("{rate:.0}/s offered");
        rows.push(
            Row::new("chat", format!("first byte p50, {label}"), "ms", ms(cf.p50))
                .direct(ms(df.p50))
                .target("added <= 1 ms"),
        );
        rows.push(
            Row::new("chat", format!("first byte p99, {label}"), "ms", ms(cf.p99))
                .direct(ms(df.p99))
                .target("added <= 5 ms"),
        );
        Ok(())
    }

    /// Added latency under a steady load below saturation: 20-token streams
    /// arriving at `rate` per second, direct and through spool.
    pub async fn paced_latency(
        &self,
        rows: &mut Vec<Row>,
        rate: f64,
        seconds: f64,
    ) -> anyhow::Result<()> {
        let total = (rate * seconds) as usize;
        let d = load::paced(
            &self.client,
            &self.direct_url(),
            &Self::direct_body(20, 0),
            total,
            rate,
        )
        .await?;
        let s = load::paced(
            &self.client,
            &self.spool_url(),
            &Self::spool_body(20, 0),
            total,
            rate,
        )
        .await?;
        let (df, sf) = (percentiles(&d, first_byte), percentiles(&s, first_byte));
        let (dl, sl) = (percentiles(&d, last_byte), percentiles(&s, last_byte));
        let label = format!("{rate:.0}/s offered");
        rows.push(
            Row::new(
                "paced",
                format!("first byte p50, {label}"),
                "ms",
                ms(sf.p50),
            )
            .direct(ms(df.p50))
            .target("added <= 1 ms"),
        );
        rows.push(
            Row::new(
                "paced",
                format!("first byte p99, {label}"),
                "ms",
                ms(sf.p99),
            )
            .direct(ms(df.p99))
            .target("added <= 5 ms"),
        );
        rows.push(
            Row::new("paced", format!("last byte p50, {label}"), "ms", ms(sl.p50))
                .direct(ms(dl.p50)),
        );
        rows.push(
            Row::new("paced", format!("last byte p99, {label}"), "ms", ms(sl.p99))
                .direct(ms(dl.p99)),
        );
        Ok(())
    }

    /// Throughput at saturation: 200-token responses, every event persisted.
    pub async fn throughput(
        &self,
        rows: &mut Vec<Row>,
        total: usize,
        tokens: usize,
        concurrencies: &[usize],
    ) -> anyhow::Result<()> {
        let (direct, spool) = (Self::direct_body(tokens, 0), Self::spool_body(tokens, 0));
        for &c in concurrencies {
            let (_, d_wall) =
                load::run(&self.client, &self.direct_url(), Some(&direct), total, c).await?;
            let before = self.spool.persisted_events().await?;
            let (_, s_wall) =
                load::run(&self.client, &self.spool_url(), Some(&spool), total, c).await?;
            let events = self.spool.persisted_events().await? - before;
            rows.push(
                Row::new(
                    "throughput",
                    format!("{tokens}-token responses/s c{c}"),
                    "1/s",
                    total as f64 / s_wall.as_secs_f64(),
                )
                .direct(total as f64 / d_wall.as_secs_f64()),
            );
            rows.push(
                Row::new(
                    "throughput",
                    format!("persisted events/s c{c}"),
                    "1/s",
                    events as f64 / s_wall.as_secs_f64(),
                )
                .target(">= 100000"),
            );
        }
        Ok(())
    }

    /// Replay of a finished response of about `events` events.
    pub async fn replay(
        &self,
        rows: &mut Vec<Row>,
        events: usize,
        repeats: usize,
    ) -> anyhow::Result<()> {
        let body = json!({"model": format!("t{}d0", events.saturating_sub(8)), "input": "bench"})
            .to_string();
        let created: serde_json::Value = serde_json::from_slice(
            &self
                .client
                .post(self.spool_url())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?
                .bytes()
                .await?,
        )?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no id: {created}"))?
            .to_owned();
        let url = format!("{}/v1/responses/{id}?stream=true", self.spool.base);
        let middle = format!("{url}&starting_after={}", events / 2);
        let (full, _) = load::run(&self.client, &url, None, repeats, 1).await?;
        let (half, _) = load::run(&self.client, &middle, None, repeats, 1).await?;
        let (_, wall) = load::run(&self.client, &url, None, repeats * 4, 4).await?;
        let snapshot = format!("{}/v1/responses/{id}", self.spool.base);
        let (get, _) = load::run(&self.client, &snapshot, None, repeats, 1).await?;
        rows.push(
            Row::new(
                "replay",
                format!("{events} events from the start p50"),
                "ms",
                ms(percentiles(&full, last_byte).p50),
            )
            .target("<= 20 ms"),
        );
        rows.push(Row::new(
            "replay",
            format!("{events} events from the middle p50"),
            "ms",
            ms(percentiles(&half, last_byte).p50),
        ));
        rows.push(Row::new(
            "replay",
            "replays/s, 4 concurrent",
            "1/s",
            (repeats * 4) as f64 / wall.as_secs_f64(),
        ));
        rows.push(Row::new(
            "replay",
            "GET the finished object p50",
            "ms",
            ms(percentiles(&get, last_byte).p50),
        ));
        Ok(())
    }

    /// Many slow streams open at once: memory per stream and CPU.
    pub async fn open_streams(&self, rows: &mut Vec<Row>, streams: usize) -> anyhow::Result<()> {
        let idle_rss = self.spool.rss_kib()?;
        // 60 tokens, one every 100 ms: each stream stays open ~6 s, longer
        // than it takes to open them all.
        let body = Self::spool_body(60, 100);
        let open_now = Arc::new(AtomicUsize::new(0));
        let started = Arc::new(AtomicUsize::new(0));
        let url = self.spool_url();
        let all = futures::stream::iter(0..streams)
            .map(|_| {
                let (client, url, body) = (self.client.clone(), url.clone(), body.clone());
                let (open_now, started) = (open_now.clone(), started.clone());
                async move {
                    let response = client
                        .post(url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await?;
                    let mut stream = response.bytes_stream();
                    let mut counted = false;
                    let mut result = Ok(());
                    while let Some(chunk) = stream.next().await {
                        if let Err(e) = chunk {
                            result = Err(e.into());
                            break;
                        }
                        if !counted {
                            open_now.fetch_add(1, Ordering::Relaxed);
                            started.fetch_add(1, Ordering::Relaxed);
                            counted = true;
                        }
                    }
                    if counted {
                        open_now.fetch_sub(1, Ordering::Relaxed);
                    }
                    result
                }
            })
            .buffer_unordered(streams)
            .collect::<Vec<anyhow::Result<()>>>();
        let sample = async {
            let begin = Instant::now();
            let mut best = (0, 0);
            // Sample until every stream has started, keeping the moment with
            // the most streams open at once.
            while started.load(Ordering::Relaxed) < streams
                && begin.elapsed() < Duration::from_secs(60)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let open = open_now.load(Ordering::Relaxed);
                if open > best.0 {
                    best = (open, self.spool.rss_kib().unwrap_or(0));
                }
            }
            let (cpu0, t0) = (self.spool.cpu_seconds().unwrap_or(0.0), Instant::now());
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let cpu =
                (self.spool.cpu_seconds().unwrap_or(cpu0) - cpu0) / t0.elapsed().as_secs_f64();
            let open = open_now.load(Ordering::Relaxed);
            if open > best.0 {
                best = (open, self.spool.rss_kib().unwrap_or(0));
            }
            (best, cpu, open)
        };
        let (results, ((max_open, rss_at_max), cpu, open_during_cpu)) = tokio::join!(all, sample);
        let failed = results.iter().filter(|r| r.is_err()).count();
        let per_stream = rss_at_max.saturating_sub(idle_rss) as f64 / max_open.max(1) as f64;
        rows.push(Row::new(
            "open",
            format!("most streams open at once (of {streams})"),
            "count",
            max_open as f64,
        ));
        rows.push(Row::new(
            "open",
            "resident memory then",
            "MiB",
            rss_at_max as f64 / 1024.0,
        ));
        rows.push(Row::new(
            "open",
            "resident memory per open stream",
            "KiB",
            per_stream,
        ));
        rows.push(
            Row::new(
                "open",
                "  → for 10,000 streams",
                "MiB",
                (idle_rss as f64 + per_stream * 10_000.0) / 1024.0,
            )
            .target("<= 1024 MiB"),
        );
        rows.push(Row::new(
            "open",
            format!("CPU with {open_during_cpu} open (1.0 = one core)"),
            "cores",
            cpu,
        ));
        if failed > 0 {
            rows.push(Row::new(
                "open",
                "streams that failed",
                "count",
                failed as f64,
            ));
        }
        Ok(())
    }
}

/// Raw appends through the store with the server's group-commit writer.
/// Turns in one conversation of the `websocket` scenario.
const CONVERSATION_TURNS: usize = 20;

/// The function the `tools` model calls.
fn lookup_tool() -> serde_json::Value {
    json!([{"type": "function", "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "integer"}}}}])
}

/// The input of turn `turn`: a user message, or the result of the call the
/// previous turn ended with.
fn turn_input(turn: usize, call_id: Option<&str>) -> serde_json::Value {
    match call_id {
        Some(call_id) if turn % 2 == 1 => {
            json!([{"type": "function_call_output", "call_id": call_id, "output": "42"}])
        }
        _ => json!([{"role": "user", "content": format!("turn {turn}")}]),
    }
}

/// A finished response's id and the call id of its function call, if any.
fn ended(response: &serde_json::Value) -> anyhow::Result<(String, Option<String>)> {
    let id = response["id"]
        .as_str()
        .context("a response without an id")?
        .to_owned();
    let call_id = response["output"].as_array().and_then(|items| {
        items
            .iter()
            .find(|i| i["type"] == "function_call")
            .and_then(|i| i["call_id"].as_str())
            .map(str::to_owned)
    });
    Ok((id, call_id))
}

/// The p50 and p99 of `timings`, in ms.
pub fn p50_p99(timings: &mut [Duration]) -> (f64, f64) {
    timings.sort();
    let at = |q: f64| {
        let i = ((timings.len() as f64 - 1.0) * q).round() as usize;
        timings.get(i).map_or(0.0, |d| ms(*d))
    };
    (at(0.50), at(0.99))
}

impl Bench {
    /// 20-turn tool-calling conversations, each over one WebSocket and over
    /// HTTP with `previous_response_id`, beside the same model calls made
    /// straight to the upstream: the latency of one turn.
    pub async fn websocket(&self, rows: &mut Vec<Row>, conversations: usize) -> anyhow::Result<()> {
        let (mut direct, mut http, mut socket) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..conversations {
            direct.extend(self.direct_conversation().await?);
            http.extend(self.http_conversation().await?);
            socket.extend(self.socket_conversation().await?);
        }
        let direct = p50_p99(&mut direct);
        for (transport, mut timings) in
            [("websocket", socket), ("http + previous_response_id", http)]
        {
            let (p50, p99) = p50_p99(&mut timings);
            rows.push(
                Row::new("websocket", format!("turn p50 ({transport})"), "ms", p50)
                    .direct(direct.0),
            );
            rows.push(
                Row::new("websocket", format!("turn p99 ({transport})"), "ms", p99)
                    .direct(direct.1),
            );
        }
        Ok(())
    }

    /// The upstream alone, asked what spool asks it in each turn.
    async fn direct_conversation(&self) -> anyhow::Result<Vec<Duration>> {
        let mut timings = Vec::with_capacity(CONVERSATION_TURNS);
        let mut messages = Vec::new();
        for turn in 0..CONVERSATION_TURNS {
            if turn % 2 == 0 {
                messages.push(json!({"role": "user", "content": format!("turn {turn}")}));
            } else {
                let id = format!("call_{}", messages.len() - 1);
                messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
                    {"id": id, "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]}));
                messages.push(json!({"role": "tool", "tool_call_id": id, "content": "42"}));
            }
            let body = json!({"model": "tools", "stream": true, "messages": messages});
            let begin = Instant::now();
            self.client
                .post(self.direct_url())
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await?
                .bytes()
                .await?;
            timings.push(begin.elapsed());
        }
        Ok(timings)
    }

    /// One conversation over HTTP, streamed, chained by `previous_response_id`.
    async fn http_conversation(&self) -> anyhow::Result<Vec<Duration>> {
        let mut timings = Vec::with_capacity(CONVERSATION_TURNS);
        let (mut previous, mut call_id): (Option<String>, Option<String>) = (None, None);
        for turn in 0..CONVERSATION_TURNS {
            let body = json!({"model": "tools", "stream": true, "tools": lookup_tool(),
                              "previous_response_id": previous,
                              "input": turn_input(turn, call_id.as_deref())});
            let begin = Instant::now();
            let text = self
                .client
                .post(self.spool_url())
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await?
                .text()
                .await?;
            timings.push(begin.elapsed());
            let terminal = text
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                .find(|e| e["type"] == "response.completed")
                .context("an HTTP turn did not complete")?;
            (previous, call_id) = ended(&terminal["response"]).map(|(id, c)| (Some(id), c))?;
        }
        Ok(timings)
    }

    /// One conversation over one WebSocket.
    async fn socket_conversation(&self) -> anyhow::Result<Vec<Duration>> {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let url = self.spool_url().replacen("http://", "ws://", 1);
        let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
        let mut timings = Vec::with_capacity(CONVERSATION_TURNS);
        let (mut previous, mut call_id): (Option<String>, Option<String>) = (None, None);
        for turn in 0..CONVERSATION_TURNS {
            let frame = json!({"type": "response.create", "model": "tools",
                               "tools": lookup_tool(), "previous_response_id": previous,
                               "input": turn_input(turn, call_id.as_deref())});
            let begin = Instant::now();
            socket.send(Message::Text(frame.to_string().into())).await?;
            let terminal = loop {
                let message = socket.next().await.context("the socket closed")??;
                let Message::Text(text) = message else {
                    continue;
                };
                let event: serde_json::Value = serde_json::from_str(text.as_str())?;
                match event["type"].as_str() {
                    Some("response.completed") => break event,
                    Some("error" | "response.failed" | "response.incomplete") => {
                        anyhow::bail!("a WebSocket turn did not complete: {event}")
                    }
                    _ => {}
                }
            };
            timings.push(begin.elapsed());
            (previous, call_id) = ended(&terminal["response"]).map(|(id, c)| (Some(id), c))?;
        }
        socket.close(None).await?;
        Ok(timings)
    }
}

pub async fn store(rows: &mut Vec<Row>, events: usize, producers: usize) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("spool-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&format!("sqlite://{}", dir.join("s.db").display())).await?);
    let appends = appends_per_second(store, events, producers).await?;
    rows.push(Row::new(
        "store",
        format!("appends/s, {producers} producers, group commit"),
        "1/s",
        appends,
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Appends per second through the server's group-commit writer into
/// `store`, from `producers` runs appending at once.
pub async fn appends_per_second(
    store: Arc<dyn Store>,
    events: usize,
    producers: usize,
) -> anyhow::Result<f64> {
    let (writer, task) = Writer::spawn(store, Arc::new(LocalBus::default()), Default::default());
    let per_producer = events / producers;
    let start = Instant::now();
    let handles: Vec<_> = (0..producers)
        .map(|_| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let id = ResponseId::generate(&spool_server::runtime::ids::Uuid7Ids);
                for seq in 0..per_producer as u64 {
                    let envelope = Envelope {
                        seq,
                        ts_ms: 0,
                        event: Event::PartDelta {
                            output_index: 0,
                            content_index: 0,
                            delta: " token".into(),
                            logprobs: Vec::new(),
                        },
                    };
                    writer
                        .send(WriteOp::Append {
                            response_id: id.clone(),
                            envelope,
                        })
                        .await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for h in handles {
        h.await??;
    }
    writer.flush().await.map_err(anyhow::Error::msg)?;
    let elapsed = start.elapsed();
    drop(writer);
    let _ = task.await;
    Ok((per_producer * producers) as f64 / elapsed.as_secs_f64())
}
