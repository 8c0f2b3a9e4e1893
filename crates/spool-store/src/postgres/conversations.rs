//! Conversations: their records, item lists, and the claim that lets one
//! response at a time run on a conversation. A claim is taken under the
//! conversation row's lock (`SELECT … FOR UPDATE`), so two instances
//! claiming at once are served one after the other, and the second sees
//! the first's claim.

use super::error::Error;
use super::paging::{ItemList, page_items};
use super::writer::append_to_conversation;
use super::{PostgresStore, neutral};
use crate::codec::{corrupt, item_rows, parse_id, parse_item, to_json};
use crate::{
    ConversationAccess, ConversationRecord, ConversationStore, ItemPage, ItemPageQuery, ListPage,
    NewConversation, PageError, StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::item::Item;
use std::collections::BTreeMap;
use tokio_postgres::Row;

const CONVERSATION_ITEMS: ItemList = ItemList {
    table: "conversation_items",
    key: "conversation_id",
    filter: "",
};

fn record(row: &Row) -> Result<ConversationRecord, Error> {
    let active: Option<&str> = row.try_get(3)?;
    Ok(ConversationRecord {
        id: ConversationId::parse(row.try_get(0)?).map_err(corrupt)?,
        created_at: row.try_get(1)?,
        metadata: serde_json::from_str(row.try_get(2)?).map_err(corrupt)?,
        active_response: active.map(parse_id).transpose()?,
    })
}

/// Why a write that needs conversation `id` idle cannot go ahead (it does
/// not exist, or a response runs on it); `None` when it is idle. Locks the
/// row until the transaction ends.
async fn not_idle(tx: &impl GenericClient, id: &str) -> Result<Option<ConversationAccess>, Error> {
    let statement = tx
        .prepare_cached("SELECT active_response_id FROM conversations WHERE id = $1 FOR UPDATE")
        .await?;
    let row = tx.query_opt(&statement, &[&id]).await?;
    Ok(match row {
        None => Some(ConversationAccess::NotFound),
        Some(row) => match row.try_get::<_, Option<&str>>(0)? {
            Some(response) => Some(ConversationAccess::Busy(parse_id(response)?)),
            None => None,
        },
    })
}

/// The first of `item_ids` already in the conversation, if any.
async fn existing_item(
    tx: &impl GenericClient,
    id: &str,
    item_ids: &[String],
) -> Result<Option<String>, Error> {
    if item_ids.is_empty() {
        return Ok(None);
    }
    let statement = tx
        .prepare_cached(
            "SELECT item_id FROM conversation_items \
             WHERE conversation_id = $1 AND item_id = ANY($2) \
             ORDER BY array_position($2, item_id) LIMIT 1",
        )
        .await?;
    let row = tx.query_opt(&statement, &[&id, &item_ids]).await?;
    Ok(row.map(|r| r.try_get::<_, String>(0)).transpose()?)
}

#[async_trait]
impl ConversationStore for PostgresStore {
    async fn create_conversation(&self, c: &NewConversation) -> Result<(), StoreError> {
        let metadata = to_json(&c.metadata)?;
        let items = item_rows(&c.items)?;
        neutral(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute(
                "INSERT INTO conversations (id, created_at, metadata) VALUES ($1, $2, $3)",
                &[&c.id.as_str(), &c.created_at, &metadata],
            )
            .await?;
            append_to_conversation(&tx, c.id.as_str(), &items).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    async fn conversation(
        &self,
        id: &ConversationId,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT id, created_at, metadata, active_response_id FROM conversations \
                     WHERE id = $1",
                )
                .await?;
            let row = client.query_opt(&statement, &[&id.as_str()]).await?;
            row.as_ref().map(record).transpose()
        })
        .await
    }

    async fn update_conversation(
        &self,
        id: &ConversationId,
        metadata: &BTreeMap<String, String>,
    ) -> Result<bool, StoreError> {
        let metadata = to_json(metadata)?;
        neutral(async {
            let client = self.client().await?;
            let updated = client
                .execute(
                    "UPDATE conversations SET metadata = $1 WHERE id = $2",
                    &[&metadata, &id.as_str()],
                )
                .await?;
            Ok(updated > 0)
        })
        .await
    }

    async fn delete_conversation(&self, id: &ConversationId) -> Result<bool, StoreError> {
        neutral(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let deleted = tx
                .execute("DELETE FROM conversations WHERE id = $1", &[&id.as_str()])
                .await?;
            tx.execute(
                "DELETE FROM conversation_items WHERE conversation_id = $1",
                &[&id.as_str()],
            )
            .await?;
            tx.commit().await?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn append_conversation_items(
        &self,
        id: &ConversationId,
        items: &[Item],
    ) -> Result<ConversationAccess, StoreError> {
        let items = item_rows(items)?;
        neutral(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            if let Some(refused) = not_idle(&tx, id.as_str()).await? {
                return Ok(refused);
            }
            let ids: Vec<String> = items.iter().map(|(item_id, _)| item_id.clone()).collect();
            if let Some(duplicate) = existing_item(&tx, id.as_str(), &ids).await? {
                return Ok(ConversationAccess::Duplicate(duplicate));
            }
            append_to_conversation(&tx, id.as_str(), &items).await?;
            tx.commit().await?;
            Ok(ConversationAccess::Done)
        })
        .await
    }

    async fn conversation_items(
        &self,
        id: &ConversationId,
        query: &ItemPageQuery,
    ) -> Result<ItemPage, PageError> {
        let client = self.client().await.map_err(StoreError::from)?;
        page_items(&client, &CONVERSATION_ITEMS, id.as_str(), query).await
    }

    async fn conversation_item(
        &self,
        id: &ConversationId,
        item_id: &str,
    ) -> Result<Option<Item>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT body FROM conversation_items \
                     WHERE conversation_id = $1 AND item_id = $2 ORDER BY position LIMIT 1",
                )
                .await?;
            let row = client
                .query_opt(&statement, &[&id.as_str(), &item_id])
                .await?;
            match row {
                Some(row) => Ok(Some(parse_item(row.try_get(0)?)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn delete_conversation_item(
        &self,
        id: &ConversationId,
        item_id: &str,
    ) -> Result<bool, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let deleted = client
                .execute(
                    "DELETE FROM conversation_items WHERE conversation_id = $1 AND item_id = $2",
                    &[&id.as_str(), &item_id],
                )
                .await?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn conversation_history(&self, id: &ConversationId) -> Result<Vec<Item>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let statement = client
                .prepare_cached(
                    "SELECT body FROM conversation_items WHERE conversation_id = $1 \
                     ORDER BY position",
                )
                .await?;
            let rows = client.query(&statement, &[&id.as_str()]).await?;
            rows.iter()
                .map(|r| Ok(parse_item(r.try_get(0)?)?))
                .collect()
        })
        .await
    }

    async fn claim_conversation(
        &self,
        id: &ConversationId,
        response: &ResponseId,
        new_items: &[String],
    ) -> Result<ConversationAccess, StoreError> {
        neutral(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            if let Some(refused) = not_idle(&tx, id.as_str()).await? {
                return Ok(refused);
            }
            if let Some(duplicate) = existing_item(&tx, id.as_str(), new_items).await? {
                return Ok(ConversationAccess::Duplicate(duplicate));
            }
            tx.execute(
                "UPDATE conversations SET active_response_id = $1, claimed_by = $2 WHERE id = $3",
                &[&response.as_str(), &self.inner.instance, &id.as_str()],
            )
            .await?;
            tx.commit().await?;
            Ok(ConversationAccess::Done)
        })
        .await
    }

    async fn release_conversation(
        &self,
        id: &ConversationId,
        response: &ResponseId,
    ) -> Result<(), StoreError> {
        neutral(async {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE conversations SET active_response_id = NULL, claimed_by = NULL \
                     WHERE id = $1 AND active_response_id = $2",
                    &[&id.as_str(), &response.as_str()],
                )
                .await?;
            Ok(())
        })
        .await
    }

    /// Only claims this instance made, or made by an instance whose lease
    /// has run out: another live instance's claim may be one whose response
    /// it is about to create.
    async fn release_stale_claims(&self) -> Result<(), StoreError> {
        neutral(async {
            let client = self.client().await?;
            client
                .execute(
                    "UPDATE conversations c SET active_response_id = NULL, claimed_by = NULL \
                     WHERE active_response_id IS NOT NULL \
                       AND NOT EXISTS (SELECT 1 FROM responses r \
                           WHERE r.id = c.active_response_id \
                             AND r.status IN ('queued', 'in_progress')) \
                       AND (claimed_by IS NULL OR claimed_by = $1 OR NOT EXISTS ( \
                           SELECT 1 FROM instances i WHERE i.id = c.claimed_by \
                             AND i.lease_until > (extract(epoch FROM clock_timestamp()) * 1000)::int8))",
                    &[&self.inner.instance],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn list_conversations(
        &self,
        after: Option<&ConversationId>,
        limit: u32,
    ) -> Result<ListPage<ConversationRecord>, PageError> {
        let rows = neutral(async {
            let client = self.client().await?;
            let before = match after {
                Some(id) => match client
                    .query_opt(
                        "SELECT ord FROM conversations WHERE id = $1",
                        &[&id.as_str()],
                    )
                    .await?
                {
                    Some(row) => Some(row.try_get::<_, i64>(0)?),
                    None => return Ok(None),
                },
                None => None,
            };
            let statement = client
                .prepare_cached(
                    "SELECT id, created_at, metadata, active_response_id FROM conversations \
                     WHERE $1::int8 IS NULL OR ord < $1 ORDER BY ord DESC LIMIT $2",
                )
                .await?;
            let rows = client
                .query(&statement, &[&before, &(i64::from(limit) + 1)])
                .await?;
            Ok(Some(rows))
        })
        .await?;
        let (rows, has_more) = finish_page(rows, after.map(|a| a.as_str()), limit)?;
        let data = rows
            .iter()
            .map(|r| record(r).map_err(StoreError::from))
            .collect::<Result<_, _>>()?;
        Ok(ListPage { data, has_more })
    }

    async fn conversation_responses(
        &self,
        id: &ConversationId,
        after: Option<&ResponseId>,
        limit: u32,
    ) -> Result<ListPage<ResponseId>, PageError> {
        let rows = neutral(async {
            let client = self.client().await?;
            let from = match after {
                Some(response) => match client
                    .query_opt(
                        "SELECT ord FROM responses WHERE id = $1 AND conversation_id = $2",
                        &[&response.as_str(), &id.as_str()],
                    )
                    .await?
                {
                    Some(row) => Some(row.try_get::<_, i64>(0)?),
                    None => return Ok(None),
                },
                None => None,
            };
            let statement = client
                .prepare_cached(
                    "SELECT id FROM responses WHERE conversation_id = $1 \
                     AND ($2::int8 IS NULL OR ord > $2) ORDER BY ord LIMIT $3",
                )
                .await?;
            let rows = client
                .query(&statement, &[&id.as_str(), &from, &(i64::from(limit) + 1)])
                .await?;
            Ok(Some(rows))
        })
        .await?;
        let (rows, has_more) = finish_page(rows, after.map(|a| a.as_str()), limit)?;
        let data = rows
            .iter()
            .map(|r| {
                let id: &str = r.try_get(0).map_err(|e| StoreError::from(Error::from(e)))?;
                parse_id(id)
            })
            .collect::<Result<_, _>>()?;
        Ok(ListPage { data, has_more })
    }
}

/// Ends a page read as `limit + 1` rows after the cursor `after`: `None`
/// rows means the cursor named nothing (an error naming it), one row past
/// `limit` means there is more.
fn finish_page<T>(
    rows: Option<Vec<T>>,
    after: Option<&str>,
    limit: u32,
) -> Result<(Vec<T>, bool), PageError> {
    let Some(mut rows) = rows else {
        return Err(PageError::UnknownCursor {
            param: "after",
            id: after.unwrap_or_default().to_owned(),
        });
    };
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows, has_more))
}
