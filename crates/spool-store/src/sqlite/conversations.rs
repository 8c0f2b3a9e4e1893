//! Conversations: their records, item lists, and the claim that lets one
//! response at a time run on a conversation.

use super::SqliteStore;
use super::error::Error;
use super::paging::{finish_page, page_items};
use super::writer::append_to_conversation;
use crate::codec::{corrupt, item_rows, parse_id, parse_item, to_json};
use crate::{
    ConversationAccess, ConversationRecord, ConversationStore, ItemPage, ItemPageQuery, ListPage,
    NewConversation, PageError, StoreError,
};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::item::Item;
use std::collections::BTreeMap;

/// The first of `item_ids` already in the conversation, if any.
fn existing_item(
    tx: &rusqlite::Transaction<'_>,
    conversation_id: &str,
    item_ids: &[String],
) -> rusqlite::Result<Option<String>> {
    let mut exists = tx.prepare_cached(
        "SELECT 1 FROM conversation_items WHERE conversation_id = ? AND item_id = ? LIMIT 1",
    )?;
    for item_id in item_ids {
        if exists.exists([conversation_id, item_id])? {
            return Ok(Some(item_id.clone()));
        }
    }
    Ok(None)
}

/// Why a write that needs conversation `id` idle cannot go ahead (it does
/// not exist, or a response runs on it); `None` when it is idle.
fn not_idle(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Option<ConversationAccess>, Error> {
    let active: Option<Option<String>> = tx
        .query_row(
            "SELECT active_response_id FROM conversations WHERE id = ?",
            [id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match active {
        None => Some(ConversationAccess::NotFound),
        Some(Some(response)) => Some(ConversationAccess::Busy(parse_id(&response)?)),
        Some(None) => None,
    })
}

#[async_trait]
impl ConversationStore for SqliteStore {
    async fn create_conversation(&self, c: &NewConversation) -> Result<(), StoreError> {
        let id = c.id.as_str().to_owned();
        let created_at = c.created_at;
        let metadata = to_json(&c.metadata)?;
        let items = item_rows(&c.items)?;
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO conversations (id, created_at, metadata) VALUES (?, ?, ?)",
                params![id, created_at, metadata],
            )?;
            append_to_conversation(&tx, &id, &items)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT id, created_at, metadata, active_response_id FROM conversations WHERE id = ?",
                )?
                .query_row([&id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .optional()?;
            let Some((id, created_at, metadata, active)) = row else {
                return Ok(None);
            };
            Ok(Some(ConversationRecord {
                id: ConversationId::parse(&id).map_err(corrupt)?,
                created_at,
                metadata: serde_json::from_str(&metadata).map_err(corrupt)?,
                active_response: active.as_deref().map(parse_id).transpose()?,
            }))
        })
        .await
    }

    async fn update_conversation(
        &self,
        id: &ConversationId,
        metadata: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        let metadata = to_json(metadata)?;
        self.on_writer(move |conn| {
            Ok(conn.execute(
                "UPDATE conversations SET metadata = ? WHERE id = ?",
                [&metadata, &id],
            )? > 0)
        })
        .await
    }

    async fn delete_conversation(&self, id: &ConversationId) -> Result<bool, StoreError> {
        let id = id.as_str().to_owned();
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.execute("DELETE FROM conversations WHERE id = ?", [&id])?;
            tx.execute(
                "DELETE FROM conversation_items WHERE conversation_id = ?",
                [&id],
            )?;
            tx.commit()?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn append_conversation_items(
        &self,
        id: &ConversationId,
        items: &[Item],
    ) -> Result<ConversationAccess, StoreError> {
        let id = id.as_str().to_owned();
        let items = item_rows(items)?;
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(refused) = not_idle(&tx, &id)? {
                return Ok(refused);
            }
            let ids: Vec<String> = items.iter().map(|(item_id, _)| item_id.clone()).collect();
            if let Some(duplicate) = existing_item(&tx, &id, &ids)? {
                return Ok(ConversationAccess::Duplicate(duplicate));
            }
            append_to_conversation(&tx, &id, &items)?;
            tx.commit()?;
            Ok(ConversationAccess::Done)
        })
        .await
    }

    async fn conversation_items(
        &self,
        id: &ConversationId,
        query: &ItemPageQuery,
    ) -> Result<ItemPage, PageError> {
        let id = id.as_str().to_owned();
        let query = query.clone();
        self.read(move |conn| {
            Ok(page_items(
                conn,
                "conversation_items",
                "conversation_id",
                "",
                &id,
                &query,
            ))
        })
        .await?
    }

    async fn conversation_item(
        &self,
        id: &ConversationId,
        item_id: &str,
    ) -> Result<Option<Item>, StoreError> {
        let (id, item_id) = (id.as_str().to_owned(), item_id.to_owned());
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached(
                    "SELECT body FROM conversation_items WHERE conversation_id = ? AND item_id = ? \
                     ORDER BY position LIMIT 1",
                )?
                .query_row([&id, &item_id], |r| r.get(0))
                .optional()?;
            Ok(body.as_deref().map(parse_item).transpose()?)
        })
        .await
    }

    async fn delete_conversation_item(
        &self,
        id: &ConversationId,
        item_id: &str,
    ) -> Result<bool, StoreError> {
        let (id, item_id) = (id.as_str().to_owned(), item_id.to_owned());
        self.on_writer(move |conn| {
            Ok(conn.execute(
                "DELETE FROM conversation_items WHERE conversation_id = ? AND item_id = ?",
                [&id, &item_id],
            )? > 0)
        })
        .await
    }

    async fn conversation_history(&self, id: &ConversationId) -> Result<Vec<Item>, StoreError> {
        let id = id.as_str().to_owned();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT body FROM conversation_items WHERE conversation_id = ? ORDER BY position",
            )?;
            let bodies = statement
                .query_map([&id], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(bodies
                .iter()
                .map(|b| parse_item(b))
                .collect::<Result<_, StoreError>>()?)
        })
        .await
    }

    async fn claim_conversation(
        &self,
        id: &ConversationId,
        response: &ResponseId,
        new_items: &[String],
    ) -> Result<ConversationAccess, StoreError> {
        let (id, response) = (id.as_str().to_owned(), response.as_str().to_owned());
        let new_items = new_items.to_vec();
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(refused) = not_idle(&tx, &id)? {
                return Ok(refused);
            }
            if let Some(duplicate) = existing_item(&tx, &id, &new_items)? {
                return Ok(ConversationAccess::Duplicate(duplicate));
            }
            tx.execute(
                "UPDATE conversations SET active_response_id = ? WHERE id = ?",
                [&response, &id],
            )?;
            tx.commit()?;
            Ok(ConversationAccess::Done)
        })
        .await
    }

    async fn release_conversation(
        &self,
        id: &ConversationId,
        response: &ResponseId,
    ) -> Result<(), StoreError> {
        let (id, response) = (id.as_str().to_owned(), response.as_str().to_owned());
        self.on_writer(move |conn| {
            conn.execute(
                "UPDATE conversations SET active_response_id = NULL WHERE id = ? AND active_response_id = ?",
                [&id, &response],
            )?;
            Ok(())
        })
        .await
    }

    async fn release_stale_claims(&self) -> Result<(), StoreError> {
        self.on_writer(|conn| {
            conn.execute(
                "UPDATE conversations SET active_response_id = NULL \
                 WHERE active_response_id IS NOT NULL AND active_response_id NOT IN \
                   (SELECT id FROM responses WHERE status IN ('queued', 'in_progress'))",
                [],
            )?;
            Ok(())
        })
        .await
    }

    async fn list_conversations(
        &self,
        after: Option<&ConversationId>,
        limit: u32,
    ) -> Result<ListPage<ConversationRecord>, PageError> {
        let after = after.map(|a| a.as_str().to_owned());
        let cursor = after.clone();
        let rows = self
            .read(move |conn| {
                let before_rowid = match &cursor {
                    Some(id) => match conn
                        .prepare_cached("SELECT rowid FROM conversations WHERE id = ?")?
                        .query_row([id], |r| r.get::<_, i64>(0))
                        .optional()?
                    {
                        Some(rowid) => Some(rowid),
                        None => return Ok(None),
                    },
                    None => None,
                };
                let mut statement = conn.prepare_cached(
                    "SELECT id, created_at, metadata, active_response_id FROM conversations \
                     WHERE ?1 IS NULL OR rowid < ?1 ORDER BY rowid DESC LIMIT ?2",
                )?;
                let rows = statement
                    .query_map(params![before_rowid, i64::from(limit) + 1], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(rows))
            })
            .await?;
        let (rows, has_more) = finish_page(rows, after, limit)?;
        let data = rows
            .into_iter()
            .map(|(id, created_at, metadata, active)| {
                Ok(ConversationRecord {
                    id: ConversationId::parse(&id).map_err(corrupt)?,
                    created_at,
                    metadata: serde_json::from_str(&metadata).map_err(corrupt)?,
                    active_response: active.as_deref().map(parse_id).transpose()?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(ListPage { data, has_more })
    }

    async fn conversation_responses(
        &self,
        id: &ConversationId,
        after: Option<&ResponseId>,
        limit: u32,
    ) -> Result<ListPage<ResponseId>, PageError> {
        let id = id.as_str().to_owned();
        let after = after.map(|a| a.as_str().to_owned());
        let cursor = after.clone();
        let rows = self
            .read(move |conn| {
                let after_rowid = match &cursor {
                    Some(response) => match conn
                        .prepare_cached(
                            "SELECT rowid FROM responses WHERE id = ? AND conversation_id = ?",
                        )?
                        .query_row([response, &id], |r| r.get::<_, i64>(0))
                        .optional()?
                    {
                        Some(rowid) => Some(rowid),
                        None => return Ok(None),
                    },
                    None => None,
                };
                let mut statement = conn.prepare_cached(
                    "SELECT id FROM responses WHERE conversation_id = ?1 \
                     AND (?2 IS NULL OR rowid > ?2) ORDER BY rowid LIMIT ?3",
                )?;
                let rows = statement
                    .query_map(params![id, after_rowid, i64::from(limit) + 1], |r| {
                        r.get::<_, String>(0)
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(rows))
            })
            .await?;
        let (rows, has_more) = finish_page(rows, after, limit)?;
        let data = rows
            .iter()
            .map(|id| parse_id(id))
            .collect::<Result<_, StoreError>>()?;
        Ok(ListPage { data, has_more })
    }
}
