//! The storage contract: what every [`Store`] backend must do, exercised
//! through `Arc<dyn Store>` only, each test against a fresh database.
//!
//! A backend joins by one more `contract!` line at the bottom with a
//! function that opens a fresh, empty store; the whole suite then runs
//! against it under its own module name.

use serde_json::json;
use spool_core::agent_config::AgentDefinition;
use spool_core::event::{Envelope, Event};
use spool_core::ids::{ConversationId, IdSource, ResponseId};
use spool_core::item::{ContentPart, Item, ItemStatus, MessageItem, Role};
use spool_core::run::RunError;
use spool_core::status::RunStatus;
use spool_store::postgres::{Notice, Notices};
use spool_store::{
    ApiAgentRecord, ApiSessionRecord, ConversationAccess, Create, ExecutionLeases, Finish,
    ItemPageQuery, LogStore, NewConversation, NewResponse, Order, Orphan, PageError, PostgresStore,
    SqliteStore, Store, WriteOp,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Unique ids for these tests.
struct Fresh;

impl IdSource for Fresh {
    fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
    }
}

// === fixtures ===

fn message(text: &str) -> Item {
    Item::Message(MessageItem {
        id: Fresh.new_id("msg"),
        status: ItemStatus::Completed,
        role: Role::User,
        content: vec![ContentPart::InputText { text: text.into() }],
        phase: None,
    })
}

fn messages(n: usize) -> Vec<Item> {
    (0..n).map(|i| message(&i.to_string())).collect()
}

fn new_response(
    id: &ResponseId,
    conversation: Option<&ConversationId>,
    input: Vec<Item>,
) -> WriteOp {
    let body: spool_core::request::CreateResponseBody =
        serde_json::from_value(json!({"model": "m", "input": "x"})).unwrap();
    let header = spool_core::request::RunRequest::parse(body, &Fresh)
        .unwrap()
        .header(id.clone(), 1);
    WriteOp::Create(Box::new(Create {
        response: NewResponse {
            id: id.clone(),
            created_at: 1,
            status: RunStatus::Queued,
            background: true,
            previous_response_id: None,
            conversation: conversation.cloned(),
            opens_conversation: false,
            input,
        },
        first_event: Envelope {
            seq: 0,
            ts_ms: 1,
            event: Event::RunCreated(Box::new(spool_core::event::RunCreated {
                run: header,
                input: Vec::new(),
            })),
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

fn usage(id: &ResponseId, seq: u64) -> WriteOp {
    append(
        id,
        seq,
        Event::Usage {
            usage: Default::default(),
        },
    )
}

fn finish(id: &ResponseId, seq: u64, output: Vec<Item>) -> WriteOp {
    WriteOp::Finish(Box::new(Finish {
        response_id: id.clone(),
        terminal: Some(Envelope {
            seq,
            ts_ms: seq as i64,
            event: Event::RunFailed {
                error: RunError::new("x", "y"),
            },
        }),
        status: RunStatus::Failed,
        snapshot: r#"{"status":"failed"}"#.into(),
        output,
    }))
}

fn page(limit: u32, order: Order, after: Option<&Item>, before: Option<&Item>) -> ItemPageQuery {
    ItemPageQuery {
        limit,
        order,
        after: after.map(|i| i.id().to_owned()),
        before: before.map(|i| i.id().to_owned()),
    }
}

fn seqs(log: &[Envelope]) -> Vec<u64> {
    log.iter().map(|e| e.seq).collect()
}

async fn conversation(store: &dyn Store, items: Vec<Item>) -> ConversationId {
    let id = ConversationId::generate(&Fresh);
    store
        .create_conversation(&NewConversation {
            id: id.clone(),
            created_at: 7,
            metadata: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            items,
        })
        .await
        .unwrap();
    id
}

fn agent(name: &str, model: &str) -> AgentDefinition {
    serde_json::from_value(json!({"name": name, "model": model})).unwrap()
}

// === the log ===

async fn a_run_is_created_appended_to_and_finished(store: Arc<dyn Store>) {
    let id = ResponseId::generate(&Fresh);
    let (input, output) = (messages(2), messages(1));
    store
        .write(&[new_response(&id, None, input.clone())])
        .await
        .unwrap();
    let record = store.response(&id).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Queued);
    assert!(record.background);
    assert_eq!(record.snapshot, None);

    store
        .write(&[append(&id, 1, Event::RunStarted), usage(&id, 2)])
        .await
        .unwrap();
    assert_eq!(
        store.response(&id).await.unwrap().unwrap().status,
        RunStatus::InProgress,
        "run.started moves the record to in_progress"
    );
    store
        .write(&[finish(&id, 3, output.clone())])
        .await
        .unwrap();

    let record = store.response(&id).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert_eq!(record.snapshot.as_deref(), Some(r#"{"status":"failed"}"#));
    let log = store.events(&id, None).await.unwrap();
    assert_eq!(seqs(&log), [0, 1, 2, 3]);
    assert!(matches!(log[0].event, Event::RunCreated { .. }));
    assert!(log[3].event.is_terminal());
    assert_eq!(
        store.turn_items(&id).await.unwrap(),
        [input, output].concat()
    );
}

async fn events_are_read_after_a_position(store: Arc<dyn Store>) {
    let id = ResponseId::generate(&Fresh);
    let mut batch = vec![new_response(&id, None, vec![])];
    batch.extend((1..10).map(|seq| usage(&id, seq)));
    store.write(&batch).await.unwrap();
    assert_eq!(
        seqs(&store.events(&id, None).await.unwrap()),
        (0..10).collect::<Vec<_>>()
    );
    assert_eq!(seqs(&store.events(&id, Some(6)).await.unwrap()), [7, 8, 9]);
    assert!(store.events(&id, Some(9)).await.unwrap().is_empty());
    assert!(
        store
            .events(&ResponseId::generate(&Fresh), None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_long_log_is_read_in_bounded_pages(store: Arc<dyn Store>) {
    let id = ResponseId::generate(&Fresh);
    let mut batch = vec![new_response(&id, None, vec![])];
    batch.extend((1..5000).map(|seq| usage(&id, seq)));
    store.write(&batch).await.unwrap();
    let first = store.events_page(&id, None, 1000).await.unwrap();
    assert_eq!(seqs(&first), (0..1000).collect::<Vec<_>>());
    let last = store.events_page(&id, Some(4499), 1000).await.unwrap();
    assert_eq!(seqs(&last), (4500..5000).collect::<Vec<_>>());
    // The whole log, however it is paged inside the backend.
    assert_eq!(store.events(&id, None).await.unwrap().len(), 5000);
}

async fn a_previous_response_chain_is_read_newest_first(store: Arc<dyn Store>) {
    let ids: Vec<ResponseId> = (0..4).map(|_| ResponseId::generate(&Fresh)).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut op = new_response(id, None, vec![]);
        if let (WriteOp::Create(c), Some(previous)) = (&mut op, i.checked_sub(1)) {
            c.response.previous_response_id = Some(ids[previous].clone());
        }
        store.write(&[op]).await.unwrap();
    }
    store.write(&[finish(&ids[3], 1, vec![])]).await.unwrap();
    let chain = store.response_chain(&ids[3], 100).await.unwrap();
    let chain_ids: Vec<&ResponseId> = chain.iter().map(|l| &l.id).collect();
    assert_eq!(chain_ids, [&ids[3], &ids[2], &ids[1], &ids[0]]);
    assert_eq!(chain[0].status, RunStatus::Failed);
    assert_eq!(chain[1].status, RunStatus::Queued);
    assert_eq!(store.response_chain(&ids[3], 2).await.unwrap().len(), 2);
    // A deleted turn cuts the chain there.
    store.delete(&ids[1]).await.unwrap();
    assert_eq!(store.response_chain(&ids[3], 100).await.unwrap().len(), 2);
    assert!(
        store
            .response_chain(&ResponseId::generate(&Fresh), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_failing_write_writes_nothing(store: Arc<dyn Store>) {
    let id = ResponseId::generate(&Fresh);
    store
        .write(&[new_response(&id, None, vec![])])
        .await
        .unwrap();
    // seq 0 is in the log already: the batch is refused whole.
    let refused = store.write(&[usage(&id, 1), usage(&id, 0)]).await;
    assert!(refused.is_err());
    assert_eq!(seqs(&store.events(&id, None).await.unwrap()), [0]);
}

async fn a_refused_run_does_not_fail_the_others_in_its_batch(store: Arc<dyn Store>) {
    let (good, bad) = (ResponseId::generate(&Fresh), ResponseId::generate(&Fresh));
    store
        .write(&[new_response(&bad, None, vec![])])
        .await
        .unwrap();
    let outcome = store
        .write_runs(&[
            new_response(&good, None, messages(1)),
            append(&bad, 1, Event::RunStarted),
            usage(&good, 1),
            usage(&bad, 0),
            finish(&good, 2, messages(1)),
        ])
        .await
        .unwrap();
    assert!(outcome.failure(&bad).is_some());
    assert!(outcome.failure(&good).is_none());
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(seqs(&store.events(&good, None).await.unwrap()), [0, 1, 2]);
    assert_eq!(
        store.response(&good).await.unwrap().unwrap().status,
        RunStatus::Failed
    );
    // None of the refused run's ops in the batch were kept, not even the
    // valid one before the bad one: its log has no gap.
    assert_eq!(seqs(&store.events(&bad, None).await.unwrap()), [0]);
    assert_eq!(
        store.response(&bad).await.unwrap().unwrap().status,
        RunStatus::Queued
    );
}

async fn input_items_page_by_limit_order_and_cursor(store: Arc<dyn Store>) {
    let id = ResponseId::generate(&Fresh);
    let items = messages(5);
    store
        .write(&[new_response(&id, None, items.clone())])
        .await
        .unwrap();
    let read = |q: ItemPageQuery| {
        let store = store.clone();
        let id = id.clone();
        async move { store.input_items(&id, &q).await }
    };
    let first = read(page(2, Order::Desc, None, None)).await.unwrap();
    assert_eq!(first.items, [items[4].clone(), items[3].clone()]);
    assert!(first.has_more);
    let next = read(page(2, Order::Desc, Some(&items[3]), None))
        .await
        .unwrap();
    assert_eq!(next.items, [items[2].clone(), items[1].clone()]);
    assert!(next.has_more);
    let last = read(page(2, Order::Asc, Some(&items[2]), None))
        .await
        .unwrap();
    assert_eq!(last.items, [items[3].clone(), items[4].clone()]);
    assert!(!last.has_more);
    let before = read(page(10, Order::Asc, None, Some(&items[2])))
        .await
        .unwrap();
    assert_eq!(before.items, items[..2]);
    let between = read(page(10, Order::Desc, Some(&items[4]), Some(&items[1])))
        .await
        .unwrap();
    assert_eq!(between.items, [items[3].clone(), items[2].clone()]);
    let all = read(page(100, Order::Asc, None, None)).await.unwrap();
    assert_eq!(all.items, items);
    assert!(!all.has_more);

    let unknown = ItemPageQuery {
        before: Some("msg_nope".into()),
        ..page(2, Order::Asc, None, None)
    };
    assert!(matches!(
        read(unknown).await,
        Err(PageError::UnknownCursor {
            param: "before",
            ..
        })
    ));
    let unknown = ItemPageQuery {
        after: Some("msg_nope".into()),
        ..page(2, Order::Asc, None, None)
    };
    assert!(matches!(
        read(unknown).await,
        Err(PageError::UnknownCursor { param: "after", .. })
    ));
}

async fn delete_removes_a_response_its_items_and_its_log(store: Arc<dyn Store>) {
    let (id, kept) = (ResponseId::generate(&Fresh), ResponseId::generate(&Fresh));
    store
        .write(&[
            new_response(&id, None, messages(1)),
            new_response(&kept, None, messages(1)),
        ])
        .await
        .unwrap();
    assert!(store.delete(&id).await.unwrap());
    assert!(store.response(&id).await.unwrap().is_none());
    assert!(store.events(&id, None).await.unwrap().is_empty());
    assert!(store.turn_items(&id).await.unwrap().is_empty());
    assert!(!store.delete(&id).await.unwrap());
    assert!(store.response(&kept).await.unwrap().is_some());
    assert_eq!(store.events(&kept, None).await.unwrap().len(), 1);
}

async fn unfinished_lists_the_runs_without_an_end(store: Arc<dyn Store>) {
    let (queued, running, ended) = (
        ResponseId::generate(&Fresh),
        ResponseId::generate(&Fresh),
        ResponseId::generate(&Fresh),
    );
    store
        .write(&[
            new_response(&queued, None, vec![]),
            new_response(&running, None, vec![]),
            append(&running, 1, Event::RunStarted),
            new_response(&ended, None, vec![]),
            finish(&ended, 1, vec![]),
        ])
        .await
        .unwrap();
    let mut unfinished = store.unfinished().await.unwrap();
    unfinished.sort();
    let mut expected = vec![queued, running];
    expected.sort();
    assert_eq!(unfinished, expected);
}

// === conversations ===

async fn a_conversation_is_created_read_updated_and_deleted(store: Arc<dyn Store>) {
    let items = messages(2);
    let id = conversation(store.as_ref(), items.clone()).await;
    let record = store.conversation(&id).await.unwrap().unwrap();
    assert_eq!(record.created_at, 7);
    assert_eq!(record.metadata["k"], "v");
    assert_eq!(record.active_response, None);
    assert_eq!(store.conversation_history(&id).await.unwrap(), items);

    let metadata = BTreeMap::from([("a".to_owned(), "b".to_owned())]);
    assert!(store.update_conversation(&id, &metadata).await.unwrap());
    assert_eq!(
        store.conversation(&id).await.unwrap().unwrap().metadata,
        metadata
    );

    let more = messages(1);
    assert_eq!(
        store.append_conversation_items(&id, &more).await.unwrap(),
        ConversationAccess::Done
    );
    assert_eq!(
        store.append_conversation_items(&id, &more).await.unwrap(),
        ConversationAccess::Duplicate(more[0].id().to_owned())
    );
    assert_eq!(
        store.conversation_item(&id, items[1].id()).await.unwrap(),
        Some(items[1].clone())
    );
    assert!(
        store
            .delete_conversation_item(&id, items[1].id())
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_conversation_item(&id, items[1].id())
            .await
            .unwrap()
    );
    assert_eq!(
        store.conversation_history(&id).await.unwrap(),
        [items[0].clone(), more[0].clone()]
    );

    assert!(store.delete_conversation(&id).await.unwrap());
    assert!(store.conversation(&id).await.unwrap().is_none());
    assert!(store.conversation_history(&id).await.unwrap().is_empty());
    assert!(!store.delete_conversation(&id).await.unwrap());
    let gone = ConversationId::generate(&Fresh);
    assert!(!store.update_conversation(&gone, &metadata).await.unwrap());
    assert_eq!(
        store.append_conversation_items(&gone, &more).await.unwrap(),
        ConversationAccess::NotFound
    );
}

async fn conversation_items_page_like_input_items(store: Arc<dyn Store>) {
    let items = messages(4);
    let id = conversation(store.as_ref(), items.clone()).await;
    let first = store
        .conversation_items(&id, &page(3, Order::Asc, None, None))
        .await
        .unwrap();
    assert_eq!(first.items, items[..3]);
    assert!(first.has_more);
    let rest = store
        .conversation_items(&id, &page(3, Order::Desc, None, Some(&items[1])))
        .await
        .unwrap();
    assert_eq!(rest.items, [items[3].clone(), items[2].clone()]);
    assert!(!rest.has_more);
    let unknown = ItemPageQuery {
        after: Some("msg_nope".into()),
        ..page(3, Order::Asc, None, None)
    };
    assert!(matches!(
        store.conversation_items(&id, &unknown).await,
        Err(PageError::UnknownCursor { param: "after", .. })
    ));
}

async fn one_response_at_a_time_holds_a_conversation(store: Arc<dyn Store>) {
    let history = messages(1);
    let id = conversation(store.as_ref(), history.clone()).await;
    let (first, second) = (ResponseId::generate(&Fresh), ResponseId::generate(&Fresh));
    assert_eq!(
        store.claim_conversation(&id, &first, &[]).await.unwrap(),
        ConversationAccess::Done
    );
    assert_eq!(
        store
            .conversation(&id)
            .await
            .unwrap()
            .unwrap()
            .active_response,
        Some(first.clone())
    );
    assert_eq!(
        store.claim_conversation(&id, &second, &[]).await.unwrap(),
        ConversationAccess::Busy(first.clone())
    );
    assert_eq!(
        store
            .append_conversation_items(&id, &messages(1))
            .await
            .unwrap(),
        ConversationAccess::Busy(first.clone())
    );
    // Only the holder's release counts.
    store.release_conversation(&id, &second).await.unwrap();
    assert_eq!(
        store.claim_conversation(&id, &second, &[]).await.unwrap(),
        ConversationAccess::Busy(first.clone())
    );
    store.release_conversation(&id, &first).await.unwrap();
    assert_eq!(
        store
            .claim_conversation(&id, &second, &[history[0].id().to_owned()])
            .await
            .unwrap(),
        ConversationAccess::Duplicate(history[0].id().to_owned())
    );
    assert_eq!(
        store.claim_conversation(&id, &second, &[]).await.unwrap(),
        ConversationAccess::Done
    );
    assert_eq!(
        store
            .claim_conversation(&ConversationId::generate(&Fresh), &first, &[])
            .await
            .unwrap(),
        ConversationAccess::NotFound
    );
}

async fn concurrent_claims_are_exclusive_and_appends_keep_every_item(store: Arc<dyn Store>) {
    let id = conversation(store.as_ref(), vec![]).await;
    // Twenty claimants at once: exactly one holds the conversation.
    let claims = (0..20).map(|_| {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move {
            let run = ResponseId::generate(&Fresh);
            store.claim_conversation(&id, &run, &[]).await.unwrap()
        })
    });
    let mut granted = 0;
    for claim in claims {
        match claim.await.unwrap() {
            ConversationAccess::Done => granted += 1,
            ConversationAccess::Busy(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(granted, 1);
    let holder = store
        .conversation(&id)
        .await
        .unwrap()
        .unwrap()
        .active_response
        .unwrap();
    store.release_conversation(&id, &holder).await.unwrap();
    // Twenty appenders at once: every item is kept, each once, and each
    // appender's items stay together in its order.
    let batches: Vec<Vec<Item>> = (0..20).map(|_| messages(3)).collect();
    let appends = batches.iter().cloned().map(|items| {
        let (store, id) = (store.clone(), id.clone());
        tokio::spawn(async move { store.append_conversation_items(&id, &items).await.unwrap() })
    });
    for append in appends {
        assert_eq!(append.await.unwrap(), ConversationAccess::Done);
    }
    let history = store.conversation_history(&id).await.unwrap();
    assert_eq!(history.len(), 60);
    for batch in &batches {
        let at = history.iter().position(|i| i == &batch[0]).unwrap();
        assert_eq!(&history[at..at + 3], batch.as_slice());
    }
}

async fn a_run_on_a_conversation_appends_its_items_and_releases_it_when_it_ends(
    store: Arc<dyn Store>,
) {
    let history = messages(1);
    let id = conversation(store.as_ref(), history.clone()).await;
    let run = ResponseId::generate(&Fresh);
    let (input, output) = (messages(1), messages(2));
    assert_eq!(
        store.claim_conversation(&id, &run, &[]).await.unwrap(),
        ConversationAccess::Done
    );
    store
        .write(&[new_response(&run, Some(&id), input.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.conversation_history(&id).await.unwrap(),
        [history.clone(), input.clone()].concat()
    );
    store
        .write(&[finish(&run, 1, output.clone())])
        .await
        .unwrap();
    assert_eq!(
        store.conversation_history(&id).await.unwrap(),
        [history, input, output].concat()
    );
    assert_eq!(
        store
            .conversation(&id)
            .await
            .unwrap()
            .unwrap()
            .active_response,
        None
    );
}

async fn a_run_that_opens_its_conversation_creates_it_claimed(store: Arc<dyn Store>) {
    let id = ConversationId::generate(&Fresh);
    let run = ResponseId::generate(&Fresh);
    let input = messages(1);
    let mut create = new_response(&run, Some(&id), input.clone());
    if let WriteOp::Create(c) = &mut create {
        c.response.opens_conversation = true;
    }
    store.write(&[create]).await.unwrap();
    let record = store.conversation(&id).await.unwrap().unwrap();
    assert_eq!(record.active_response.as_ref(), Some(&run));
    assert_eq!(store.conversation_history(&id).await.unwrap(), input);
    let other = ResponseId::generate(&Fresh);
    assert_eq!(
        store.claim_conversation(&id, &other, &[]).await.unwrap(),
        ConversationAccess::Busy(run.clone())
    );
    store.write(&[finish(&run, 1, messages(1))]).await.unwrap();
    let record = store.conversation(&id).await.unwrap().unwrap();
    assert_eq!(record.active_response, None);
    assert_eq!(store.conversation_history(&id).await.unwrap().len(), 2);
}

async fn conversations_and_their_responses_are_listed_in_pages(store: Arc<dyn Store>) {
    let (first, second, third) = (
        conversation(store.as_ref(), vec![]).await,
        conversation(store.as_ref(), vec![]).await,
        conversation(store.as_ref(), vec![]).await,
    );
    let page = store.list_conversations(None, 2).await.unwrap();
    let ids: Vec<_> = page.data.iter().map(|c| c.id.clone()).collect();
    assert_eq!(
        (ids, page.has_more),
        (vec![third.clone(), second.clone()], true)
    );
    let page = store.list_conversations(Some(&second), 2).await.unwrap();
    let ids: Vec<_> = page.data.iter().map(|c| c.id.clone()).collect();
    assert_eq!((ids, page.has_more), (vec![first.clone()], false));
    let gone = ConversationId::generate(&Fresh);
    assert!(matches!(
        store.list_conversations(Some(&gone), 2).await,
        Err(PageError::UnknownCursor { param: "after", .. })
    ));

    let runs: Vec<_> = (0..3).map(|_| ResponseId::generate(&Fresh)).collect();
    for run in &runs {
        store
            .write(&[new_response(run, Some(&first), vec![])])
            .await
            .unwrap();
    }
    let elsewhere = ResponseId::generate(&Fresh);
    store
        .write(&[new_response(&elsewhere, Some(&second), vec![])])
        .await
        .unwrap();
    let page = store.conversation_responses(&first, None, 2).await.unwrap();
    assert_eq!((page.data, page.has_more), (runs[..2].to_vec(), true));
    let page = store
        .conversation_responses(&first, Some(&runs[1]), 2)
        .await
        .unwrap();
    assert_eq!((page.data, page.has_more), (runs[2..].to_vec(), false));
    assert!(matches!(
        store
            .conversation_responses(&first, Some(&elsewhere), 2)
            .await,
        Err(PageError::UnknownCursor { .. })
    ));
    let page = store.conversation_responses(&third, None, 2).await.unwrap();
    assert_eq!((page.data, page.has_more), (vec![], false));
}

async fn stale_claims_are_released_and_live_ones_kept(store: Arc<dyn Store>) {
    let (stale_conversation, live_conversation) = (
        conversation(store.as_ref(), vec![]).await,
        conversation(store.as_ref(), vec![]).await,
    );
    // Claimed, then the process died before the response was created.
    let never_created = ResponseId::generate(&Fresh);
    store
        .claim_conversation(&stale_conversation, &never_created, &[])
        .await
        .unwrap();
    let running = ResponseId::generate(&Fresh);
    store
        .claim_conversation(&live_conversation, &running, &[])
        .await
        .unwrap();
    store
        .write(&[new_response(&running, Some(&live_conversation), vec![])])
        .await
        .unwrap();
    store.release_stale_claims().await.unwrap();
    let active = |id: ConversationId| {
        let store = store.clone();
        async move {
            store
                .conversation(&id)
                .await
                .unwrap()
                .unwrap()
                .active_response
        }
    };
    assert_eq!(active(stale_conversation).await, None);
    assert_eq!(active(live_conversation).await, Some(running));
}

// === agents ===

async fn agents_are_put_read_replaced_and_retained(store: Arc<dyn Store>) {
    store.put_agent(&agent("a", "m1")).await.unwrap();
    store.put_agent(&agent("b", "m1")).await.unwrap();
    assert_eq!(store.agent("a").await.unwrap(), Some(agent("a", "m1")));
    store.put_agent(&agent("a", "m2")).await.unwrap();
    assert_eq!(store.agent("a").await.unwrap(), Some(agent("a", "m2")));
    assert_eq!(store.agent("nobody").await.unwrap(), None);
    store.retain_agents(&["a".to_owned()]).await.unwrap();
    assert_eq!(store.agent("a").await.unwrap(), Some(agent("a", "m2")));
    assert_eq!(store.agent("b").await.unwrap(), None);
    store.retain_agents(&[]).await.unwrap();
    assert_eq!(store.agent("a").await.unwrap(), None);
}

async fn api_agents_and_sessions_page_and_delete_in_cascade(store: Arc<dyn Store>) {
    let agents: Vec<ApiAgentRecord> = (0..3)
        .map(|i| ApiAgentRecord {
            id: Fresh.new_id("agent"),
            config: json!({"model": "m", "instructions": i.to_string()}).to_string(),
            created_at: i,
        })
        .collect();
    for a in &agents {
        store.create_api_agent(a).await.unwrap();
    }
    assert_eq!(
        store.api_agent(&agents[1].id).await.unwrap().as_ref(),
        Some(&agents[1])
    );
    assert_eq!(store.api_agent("agent_nobody").await.unwrap(), None);
    let first = store.list_api_agents(0, Some(2)).await.unwrap();
    assert_eq!(
        (first.data.as_slice(), first.has_more),
        (&agents[..2], true)
    );
    let rest = store.list_api_agents(2, Some(2)).await.unwrap();
    assert_eq!((rest.data.as_slice(), rest.has_more), (&agents[2..], false));
    assert_eq!(store.list_api_agents(0, None).await.unwrap().data, agents);
    // The largest limit a client can ask for is "all of them", not none.
    let all = store.list_api_agents(0, Some(u32::MAX)).await.unwrap();
    assert_eq!((all.data, all.has_more), (agents.clone(), false));

    // Two sessions of agent 0, each a conversation with a run on it.
    let mut sessions = Vec::new();
    for name in ["s1", "s2"] {
        let id = conversation(store.as_ref(), Vec::new()).await;
        let session = ApiSessionRecord {
            id: id.clone(),
            agent_id: agents[0].id.clone(),
            name: name.into(),
            created_at: 5,
        };
        store.create_api_session(&session).await.unwrap();
        let run = ResponseId::generate(&Fresh);
        store
            .write(&[new_response(&run, Some(&id), messages(1))])
            .await
            .unwrap();
        store.write(&[finish(&run, 1, messages(1))]).await.unwrap();
        sessions.push((session, run));
    }
    let (s1, run1) = &sessions[0];
    assert_eq!(
        store
            .api_session(&agents[0].id, &s1.id)
            .await
            .unwrap()
            .as_ref(),
        Some(s1)
    );
    assert_eq!(
        store.api_session(&agents[1].id, &s1.id).await.unwrap(),
        None
    );
    let listed = store
        .list_api_sessions(&agents[0].id, 1, Some(5))
        .await
        .unwrap();
    assert_eq!((listed.data.len(), listed.has_more), (1, false));
    assert_eq!(listed.data[0], sessions[1].0);

    // A session goes with its conversation and its runs.
    assert_eq!(
        store
            .delete_api_session(&agents[1].id, &s1.id)
            .await
            .unwrap(),
        ConversationAccess::NotFound
    );
    // Not while a turn runs on it.
    let running = ResponseId::generate(&Fresh);
    store
        .claim_conversation(&s1.id, &running, &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_api_session(&agents[0].id, &s1.id)
            .await
            .unwrap(),
        ConversationAccess::Busy(running.clone())
    );
    assert_eq!(
        store.delete_api_agent(&agents[0].id).await.unwrap(),
        ConversationAccess::Busy(running.clone())
    );
    store.release_conversation(&s1.id, &running).await.unwrap();
    assert_eq!(
        store
            .delete_api_session(&agents[0].id, &s1.id)
            .await
            .unwrap(),
        ConversationAccess::Done
    );
    assert_eq!(store.conversation(&s1.id).await.unwrap(), None);
    assert_eq!(store.response(run1).await.unwrap(), None);
    assert!(store.events(run1, None).await.unwrap().is_empty());
    // An agent goes with its sessions.
    let (s2, run2) = &sessions[1];
    assert_eq!(
        store.delete_api_agent(&agents[0].id).await.unwrap(),
        ConversationAccess::Done
    );
    assert_eq!(
        store.delete_api_agent(&agents[0].id).await.unwrap(),
        ConversationAccess::NotFound
    );
    assert_eq!(store.api_agent(&agents[0].id).await.unwrap(), None);
    assert_eq!(
        store.api_session(&agents[0].id, &s2.id).await.unwrap(),
        None
    );
    assert_eq!(store.conversation(&s2.id).await.unwrap(), None);
    assert_eq!(store.response(run2).await.unwrap(), None);
    assert_eq!(
        store.list_api_agents(0, None).await.unwrap().data,
        agents[1..]
    );
}

async fn responses_are_listed_by_order_cursor_and_model(store: Arc<dyn Store>) {
    let runs: Vec<ResponseId> = (0..3).map(|_| ResponseId::generate(&Fresh)).collect();
    for run in &runs {
        store
            .write(&[new_response(run, None, messages(1))])
            .await
            .unwrap();
    }
    let page = store
        .list_responses(None, 2, None, Order::Desc)
        .await
        .unwrap();
    assert_eq!(
        (page.data.as_slice(), page.has_more),
        (&[runs[2].clone(), runs[1].clone()][..], true)
    );
    let rest = store
        .list_responses(Some(&runs[1]), 2, None, Order::Desc)
        .await
        .unwrap();
    assert_eq!((rest.data.as_slice(), rest.has_more), (&runs[..1], false));
    let asc = store
        .list_responses(Some(&runs[0]), 5, None, Order::Asc)
        .await
        .unwrap();
    assert_eq!(asc.data, runs[1..]);
    // The fixtures' runs are of model "m".
    assert_eq!(
        store
            .list_responses(None, 5, Some("m"), Order::Asc)
            .await
            .unwrap()
            .data,
        runs
    );
    assert!(
        store
            .list_responses(None, 5, Some("other"), Order::Asc)
            .await
            .unwrap()
            .data
            .is_empty()
    );
    let unknown = ResponseId::generate(&Fresh);
    assert!(matches!(
        store
            .list_responses(Some(&unknown), 5, None, Order::Asc)
            .await,
        Err(PageError::UnknownCursor { .. })
    ));
}

// === backends ===

/// Runs every contract test against the backend `open` returns.
macro_rules! contract {
    ($backend:ident, $open:path) => {
        mod $backend {
            contract!(@tests $open;
                a_run_is_created_appended_to_and_finished,
                events_are_read_after_a_position,
                a_long_log_is_read_in_bounded_pages,
                a_previous_response_chain_is_read_newest_first,
                a_failing_write_writes_nothing,
                a_refused_run_does_not_fail_the_others_in_its_batch,
                input_items_page_by_limit_order_and_cursor,
                delete_removes_a_response_its_items_and_its_log,
                unfinished_lists_the_runs_without_an_end,
                a_conversation_is_created_read_updated_and_deleted,
                conversation_items_page_like_input_items,
                one_response_at_a_time_holds_a_conversation,
                concurrent_claims_are_exclusive_and_appends_keep_every_item,
                a_run_on_a_conversation_appends_its_items_and_releases_it_when_it_ends,
                a_run_that_opens_its_conversation_creates_it_claimed,
                stale_claims_are_released_and_live_ones_kept,
                conversations_and_their_responses_are_listed_in_pages,
                agents_are_put_read_replaced_and_retained,
                api_agents_and_sessions_page_and_delete_in_cascade,
                responses_are_listed_by_order_cursor_and_model,
            );
        }
    };
    (@tests $open:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                match $open().await {
                    Some(store) => super::$test(store).await,
                    None => eprintln!(
                        "skipped: set SPOOL_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run it"
                    ),
                }
            }
        )*
    };
}

/// A fresh SQLite database in its own temporary directory.
async fn sqlite() -> Option<Arc<dyn Store>> {
    let dir = std::env::temp_dir().join(Fresh.new_id("contract"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("spool.db").display());
    Some(Arc::new(SqliteStore::open(&url).await.unwrap()))
}

/// A fresh schema of the database `SPOOL_TEST_DATABASE_URL` names, so
/// tests run side by side; `None` (the test is skipped) without it.
async fn postgres() -> Option<Arc<dyn Store>> {
    let url = std::env::var("SPOOL_TEST_DATABASE_URL").ok()?;
    let schema = format!("contract_{}", uuid::Uuid::now_v7().simple());
    let url = spool_store::postgres::create_schema(&url, &schema)
        .await
        .unwrap();
    let store = PostgresStore::open(&url, &Fresh.new_id("instance"), Duration::from_secs(30))
        .await
        .unwrap();
    Some(Arc::new(store))
}

contract!(sqlite, super::sqlite);
contract!(postgres, super::postgres);

// === PostgreSQL: what several instances sharing one schema rely on ===

/// Two stores on one fresh schema, as two instances would open it; `None`
/// without `SPOOL_TEST_DATABASE_URL`.
async fn two_instances(lease: Duration) -> Option<(PostgresStore, PostgresStore)> {
    let url = std::env::var("SPOOL_TEST_DATABASE_URL").ok()?;
    let schema = format!("cluster_{}", uuid::Uuid::now_v7().simple());
    let url = spool_store::postgres::create_schema(&url, &schema)
        .await
        .unwrap();
    let a = PostgresStore::open(&url, &Fresh.new_id("a"), lease)
        .await
        .unwrap();
    let b = PostgresStore::open(&url, &Fresh.new_id("b"), Duration::from_secs(30))
        .await
        .unwrap();
    Some((a, b))
}

#[tokio::test]
async fn postgres_the_runs_of_an_instance_whose_lease_expired_are_taken_over_once() {
    let Some((a, b)) = two_instances(Duration::from_millis(300)).await else {
        eprintln!("skipped: SPOOL_TEST_DATABASE_URL is not set");
        return;
    };
    let run = ResponseId::generate(&Fresh);
    a.write(&[new_response(&run, None, vec![])]).await.unwrap();
    // A's lease is live: its run is nobody else's.
    assert!(b.take_over_orphans().await.unwrap().is_empty());
    assert_eq!(
        a.own_unfinished().await.unwrap(),
        std::slice::from_ref(&run)
    );
    assert!(b.own_unfinished().await.unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = b.take_over_orphans().await.unwrap();
    assert_eq!(
        taken,
        [Orphan {
            id: run.clone(),
            executor: a.instance_id().to_owned()
        }]
    );
    // B executes it now: taken once, and not by A on its return.
    assert!(b.take_over_orphans().await.unwrap().is_empty());
    assert_eq!(
        b.own_unfinished().await.unwrap(),
        std::slice::from_ref(&run)
    );
    assert!(a.own_unfinished().await.unwrap().is_empty());
    a.renew_lease(Duration::from_secs(30)).await.unwrap();
    assert!(a.take_over_orphans().await.unwrap().is_empty());
    // A run whose end is stored is nobody's orphan.
    b.retire().await.unwrap();
    b.write(&[finish(&run, 1, vec![])]).await.unwrap();
    assert!(a.take_over_orphans().await.unwrap().is_empty());
}

#[tokio::test]
async fn postgres_committed_events_and_cancels_are_announced_to_every_instance() {
    let Some((a, b)) = two_instances(Duration::from_secs(30)).await else {
        eprintln!("skipped: SPOOL_TEST_DATABASE_URL is not set");
        return;
    };
    let mut heard = b.listen();
    assert_eq!(heard.recv().await, Some(Notice::Listening));
    let run = ResponseId::generate(&Fresh);
    a.write(&[new_response(&run, None, vec![]), usage(&run, 1)])
        .await
        .unwrap();
    // A refused batch announces nothing.
    assert!(a.write(&[usage(&run, 2), usage(&run, 1)]).await.is_err());
    a.write_runs(&[usage(&run, 2), usage(&run, 3)])
        .await
        .unwrap();
    a.notify_cancel(&run).await.unwrap();
    let within = Duration::from_secs(5);
    let next = async |heard: &mut Notices| tokio::time::timeout(within, heard.recv()).await;
    assert_eq!(
        next(&mut heard).await.unwrap(),
        Some(Notice::Committed {
            run: run.clone(),
            first: 0,
            last: 1
        })
    );
    assert_eq!(
        next(&mut heard).await.unwrap(),
        Some(Notice::Committed {
            run: run.clone(),
            first: 2,
            last: 3
        })
    );
    assert_eq!(next(&mut heard).await.unwrap(), Some(Notice::Cancel(run)));
}
