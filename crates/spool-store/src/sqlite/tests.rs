//! Tests of the SQLite store's own behaviour (what every backend must do is in
//! `tests/contract.rs`).

use super::SqliteStore;
use super::checkpoint::CHECKPOINT_EVERY;
use crate::{Create, Finish, ItemPageQuery, LogStore, NewResponse, Order, PageError, WriteOp};
use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_core::item::Item;
use spool_core::item::{ContentPart, ItemStatus, MessageItem, Role};
use spool_core::response::RunError;
use spool_core::status::RunStatus;

async fn store() -> SqliteStore {
    let dir = std::env::temp_dir().join(spool_core::ids::new_id("store-test"));
    std::fs::create_dir_all(&dir).unwrap();
    SqliteStore::open(&format!("sqlite://{}", dir.join("t.db").display()))
        .await
        .unwrap()
}

fn message(text: &str) -> Item {
    Item::Message(MessageItem {
        id: spool_core::ids::new_id("msg"),
        status: ItemStatus::Completed,
        role: Role::User,
        content: vec![ContentPart::InputText { text: text.into() }],
    })
}

fn header(id: &ResponseId) -> spool_core::response::ResponseHeader {
    let body: spool_core::request::CreateResponseBody =
        serde_json::from_str(r#"{"model":"m","input":"x"}"#).unwrap();
    spool_core::request::RunRequest::parse(body)
        .unwrap()
        .header(id.clone(), 1)
}

fn create(id: &ResponseId, input: Vec<Item>) -> WriteOp {
    WriteOp::Create(Box::new(Create {
        response: NewResponse {
            id: id.clone(),
            created_at: 1,
            status: RunStatus::InProgress,
            background: false,
            previous_response_id: None,
            conversation: None,
            input,
        },
        first_event: Envelope {
            seq: 0,
            ts_ms: 1,
            event: Event::RunCreated {
                response: Box::new(header(id)),
            },
        },
    }))
}

fn append(id: &ResponseId, seq: u64, event: Event) -> WriteOp {
    WriteOp::Append {
        response_id: id.clone(),
        envelope: Envelope {
            seq,
            ts_ms: seq as i64,
            event,
        },
    }
}

#[tokio::test]
async fn a_batch_is_written_in_order_and_read_back_from_a_cursor() {
    let s = store().await;
    let id = ResponseId::generate();
    let mut batch = vec![
        create(&id, vec![message("a")]),
        append(&id, 1, Event::RunStarted),
    ];
    // More rows than one multi-row insert holds.
    for seq in 2..500 {
        batch.push(append(
            &id,
            seq,
            Event::Usage {
                usage: Default::default(),
            },
        ));
    }
    s.write(&batch).await.unwrap();
    let all = s.events(&id, None).await.unwrap();
    assert_eq!(all.len(), 500);
    assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as u64));
    let tail = s.events(&id, Some(497)).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [498, 499]);
    assert_eq!(s.unfinished().await.unwrap(), std::slice::from_ref(&id));
    let record = s.response(&id).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::InProgress);
    assert_eq!(record.snapshot, None);
}

#[tokio::test]
async fn the_wal_is_checkpointed_into_the_database_file() {
    let dir = std::env::temp_dir().join(spool_core::ids::new_id("store-test"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.db");
    let s = SqliteStore::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let id = ResponseId::generate();
    let mut batch = vec![create(&id, vec![message("a")])];
    for seq in 1..2000 {
        batch.push(append(
            &id,
            seq,
            Event::Usage {
                usage: Default::default(),
            },
        ));
    }
    s.write(&batch).await.unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    tokio::time::sleep(CHECKPOINT_EVERY * 3).await;
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after > before,
        "the database file did not grow: {before} -> {after}"
    );
}

#[tokio::test]
async fn a_failed_batch_writes_nothing() {
    let s = store().await;
    let id = ResponseId::generate();
    s.write(&[create(&id, vec![])]).await.unwrap();
    // seq 0 exists already: the primary key refuses the whole batch.
    let batch = [
        append(&id, 1, Event::RunStarted),
        append(&id, 0, Event::RunStarted),
    ];
    assert!(s.write(&batch).await.is_err());
    assert_eq!(s.events(&id, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn finishing_stores_the_snapshot_and_output_for_continuations() {
    let s = store().await;
    let id = ResponseId::generate();
    let input = vec![message("q")];
    let output = vec![message("a")];
    s.write(&[
        create(&id, input.clone()),
        append(
            &id,
            1,
            Event::RunFailed {
                error: RunError::new("x", "y"),
            },
        ),
        WriteOp::Finish(Box::new(Finish {
            response_id: id.clone(),
            terminal: None,
            status: RunStatus::Failed,
            snapshot: "{}".into(),
            output: output.clone(),
        })),
    ])
    .await
    .unwrap();
    let record = s.response(&id).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(record.snapshot.as_deref(), Some("{}"));
    assert!(s.unfinished().await.unwrap().is_empty());
    let turn = s.turn_items(&id).await.unwrap();
    assert_eq!(turn, [input, output].concat());
}

#[tokio::test]
async fn input_items_page_both_ways_and_reject_unknown_cursors() {
    let s = store().await;
    let id = ResponseId::generate();
    let items: Vec<Item> = (0..5).map(|i| message(&i.to_string())).collect();
    s.write(&[create(&id, items.clone())]).await.unwrap();
    let q = |order, after: Option<&Item>, before: Option<&Item>| ItemPageQuery {
        limit: 2,
        order,
        after: after.map(|i| i.id().to_owned()),
        before: before.map(|i| i.id().to_owned()),
    };
    let page = s
        .input_items(&id, &q(Order::Desc, None, None))
        .await
        .unwrap();
    assert_eq!(page.items, [items[4].clone(), items[3].clone()]);
    assert!(page.has_more);
    let page = s
        .input_items(&id, &q(Order::Desc, Some(&items[3]), None))
        .await
        .unwrap();
    assert_eq!(page.items, [items[2].clone(), items[1].clone()]);
    let page = s
        .input_items(&id, &q(Order::Asc, Some(&items[2]), None))
        .await
        .unwrap();
    assert_eq!(page.items, [items[3].clone(), items[4].clone()]);
    assert!(!page.has_more);
    let page = s
        .input_items(&id, &q(Order::Asc, None, Some(&items[1])))
        .await
        .unwrap();
    assert_eq!(page.items, [items[0].clone()]);
    let unknown = ItemPageQuery {
        after: Some("msg_nope".into()),
        ..q(Order::Asc, None, None)
    };
    assert!(matches!(
        s.input_items(&id, &unknown).await,
        Err(PageError::UnknownCursor { param: "after", .. })
    ));
}

#[tokio::test]
async fn delete_removes_the_response_its_items_and_its_log() {
    let s = store().await;
    let id = ResponseId::generate();
    s.write(&[create(&id, vec![message("a")])]).await.unwrap();
    assert!(s.delete(&id).await.unwrap());
    assert!(s.response(&id).await.unwrap().is_none());
    assert!(s.events(&id, None).await.unwrap().is_empty());
    assert!(s.turn_items(&id).await.unwrap().is_empty());
    assert!(!s.delete(&id).await.unwrap());
}

#[tokio::test]
async fn a_refused_op_fails_only_its_own_run_in_a_batch_of_many() {
    let s = store().await;
    let (good, bad) = (ResponseId::generate(), ResponseId::generate());
    s.write(&[create(&bad, vec![])]).await.unwrap();
    // The runs' ops interleave, as the writer's queue delivers them; the
    // bad run's second op repeats seq 0, which the log already holds.
    let batch = [
        create(&good, vec![message("a")]),
        append(&bad, 1, Event::RunStarted),
        append(&good, 1, Event::RunStarted),
        append(&bad, 0, Event::RunStarted),
        append(
            &good,
            2,
            Event::Usage {
                usage: Default::default(),
            },
        ),
    ];
    let outcome = s.write_runs(&batch).await.unwrap();
    assert_eq!(
        outcome.failed.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        [&bad]
    );
    assert!(!outcome.failure(&bad).unwrap().is_transient());
    assert!(outcome.failure(&good).is_none());
    let good_log = s.events(&good, None).await.unwrap();
    assert_eq!(
        good_log.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // None of the bad run's ops in the batch were kept: its log has no gap
    // and does not move on past what was stored before.
    let bad_log = s.events(&bad, None).await.unwrap();
    assert_eq!(bad_log.iter().map(|e| e.seq).collect::<Vec<_>>(), [0]);
    assert_eq!(
        s.response(&bad).await.unwrap().unwrap().status,
        RunStatus::InProgress
    );
    assert_eq!(s.turn_items(&good).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_batch_of_good_runs_is_written_whole() {
    let s = store().await;
    let (a, b) = (ResponseId::generate(), ResponseId::generate());
    let outcome = s
        .write_runs(&[
            create(&a, vec![]),
            create(&b, vec![]),
            append(&a, 1, Event::RunStarted),
        ])
        .await
        .unwrap();
    assert!(outcome.failed.is_empty());
    assert_eq!(s.events(&a, None).await.unwrap().len(), 2);
    assert_eq!(s.events(&b, None).await.unwrap().len(), 1);
}
