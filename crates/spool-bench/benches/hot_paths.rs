//! Micro-benchmarks of the per-token hot paths: decoding an upstream chunk,
//! emitting an event (order check and fold), serializing it for the store,
//! folding a log into a snapshot, and projecting an event into an SSE frame.
//!
//! `baseline/json_small` serializes a three-field struct; compare the other
//! figures to it rather than to absolute times, which vary between runs.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use spool_core::emit::{MemorySink, RunEmitter};
use spool_core::event::{Envelope, Event};
use spool_core::fold::RunFold;
use spool_core::ids::{ResponseId, SequentialIds};
use spool_core::item::PartKind;
use spool_core::projection::ResponsesProjection;
use spool_core::request::{CreateResponseBody, RunRequest};
use spool_provider::openai_chat::decode_chunk;
use spool_provider::sse::SseDecoder;
use spool_server::http::sse::frame;
use std::hint::black_box;
use std::sync::Arc;

const CHUNK: &str = r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}"#;

/// Drives a future that never waits (the memory sink never does).
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

fn header() -> spool_core::run::RunHeader {
    let body: CreateResponseBody =
        serde_json::from_str(r#"{"model":"m","input":"hello"}"#).unwrap();
    RunRequest::parse(body, &SequentialIds::default())
        .unwrap()
        .header(ResponseId::parse("resp_bench").unwrap(), 0)
}

/// A text run of `tokens` deltas, as the model agent writes it.
fn text_log(tokens: usize) -> Vec<Envelope> {
    let sink = MemorySink::default();
    let events = sink.events.clone();
    ready(async {
        let mut e = RunEmitter::new(Box::new(sink), Arc::new(SequentialIds::default()));
        e.created(header(), Vec::new()).await.unwrap();
        e.started().await.unwrap();
        {
            let mut w = e.writer();
            let mut m = w.message().await.unwrap();
            let mut p = m.output_text().await.unwrap();
            for _ in 0..tokens {
                p.delta(" token").await.unwrap();
            }
            p.done().await.unwrap();
            m.done().await.unwrap();
        }
        e.complete().await.unwrap();
    });
    events.lock().unwrap().clone()
}

fn delta(seq: u64) -> Envelope {
    Envelope {
        seq,
        ts_ms: 0,
        event: Event::PartDelta {
            output_index: 0,
            content_index: 0,
            delta: " token".into(),
            logprobs: Vec::new(),
        },
    }
}

fn benches(c: &mut Criterion) {
    #[derive(serde::Serialize)]
    struct Small<'a> {
        a: u64,
        b: &'a str,
        c: bool,
    }
    c.bench_function("baseline/json_small", |b| {
        b.iter(|| {
            serde_json::to_string(black_box(&Small {
                a: 7,
                b: " token",
                c: true,
            }))
        })
    });

    c.bench_function("chunk/decode_one", |b| {
        let mut out = Vec::with_capacity(4);
        b.iter(|| {
            out.clear();
            decode_chunk(black_box(CHUNK.as_bytes()), &mut out).unwrap();
        })
    });

    let body: String = (0..200).map(|_| format!("data: {CHUNK}\n\n")).collect();
    c.bench_function("chunk/sse_decode_and_parse_200", |b| {
        b.iter(|| {
            let mut decoder = SseDecoder::new();
            let mut out = Vec::with_capacity(256);
            for piece in body.as_bytes().chunks(1024) {
                decoder
                    .feed(piece, |data| decode_chunk(data, &mut out).unwrap())
                    .unwrap();
            }
            black_box(out.len())
        })
    });

    c.bench_function("event/emit_delta", |b| {
        b.iter_batched(
            || {
                let mut e = RunEmitter::new(
                    Box::new(MemorySink::default()),
                    Arc::new(SequentialIds::default()),
                );
                ready(async {
                    e.created(header(), Vec::new()).await.unwrap();
                    e.started().await.unwrap();
                    let mut w = e.writer();
                    w.emit(Event::ItemStarted {
                        output_index: 0,
                        item: spool_core::item::Item::assistant_message("msg_1".into()),
                    })
                    .await
                    .unwrap();
                    w.emit(Event::PartStarted {
                        output_index: 0,
                        content_index: 0,
                        kind: PartKind::OutputText,
                    })
                    .await
                    .unwrap();
                });
                e
            },
            |mut e| {
                ready(e.writer().emit(delta(0).event)).unwrap();
                e
            },
            BatchSize::SmallInput,
        )
    });

    let event = delta(5).event;
    c.bench_function("event/store_payload_serialize", |b| {
        b.iter(|| serde_json::to_string(black_box(&event)).unwrap())
    });
    let payload = serde_json::to_string(&event).unwrap();
    c.bench_function("event/store_payload_parse", |b| {
        b.iter(|| serde_json::from_str::<Event>(black_box(&payload)).unwrap())
    });

    let log = text_log(200);
    c.bench_function("fold/log_of_208_events", |b| {
        b.iter(|| RunFold::from_events(black_box(&log)).unwrap())
    });
    let fold = RunFold::from_events(&log).unwrap();
    c.bench_function("fold/serialize_final_object", |b| {
        b.iter(|| {
            serde_json::to_string(&spool_core::projection::responses::object(&fold).unwrap())
                .unwrap()
        })
    });

    // Steady state: a projection mid-message, fed one more delta.
    let started = &log[..5];
    let mut projection = ResponsesProjection::new();
    for e in started {
        projection.apply(e, |_| {}).unwrap();
    }
    let next = delta(5);
    c.bench_function("projection/delta_to_sse_frame", |b| {
        b.iter_batched(
            || projection.clone(),
            |mut p| {
                p.apply(&next, |w| {
                    black_box(frame(&wire_frame(w)));
                })
                .unwrap();
                p
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("projection/replay_log_of_208_events", |b| {
        b.iter(|| {
            let mut p = ResponsesProjection::new();
            let mut bytes = 0;
            for e in &log {
                p.apply(e, |w| bytes += frame(&wire_frame(w)).len())
                    .unwrap();
            }
            bytes
        })
    });
}

/// A Responses wire event as the SSE layer frames it.
fn wire_frame(w: spool_core::projection::WireEvent) -> spool_core::projection::Frame {
    spool_core::projection::Frame {
        index: w.sequence_number,
        event: Some(w.event_type),
        data: w.json,
    }
}

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
