//! Agents created through the llama-stack Agents API, and their sessions.
//!
//! A session is a conversation; deleting a session deletes the
//! conversation and every run on it (its turns), and deleting an agent
//! deletes its sessions, all in one transaction, and none of it while a
//! turn runs on one of them (the conversations' rows are locked while
//! that is checked, so no turn starts meanwhile on any instance).

use super::error::Error;
use super::{PostgresStore, neutral};
use crate::codec::{corrupt, parse_id};
use crate::{
    ApiAgentRecord, ApiAgentStore, ApiSessionRecord, ConversationAccess, ListPage, StoreError,
};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use spool_core::ids::ConversationId;
use tokio_postgres::Row;

/// PostgreSQL's `LIMIT NULL` is no limit.
fn sql_limit(limit: Option<u32>) -> Option<i64> {
    limit.map(|l| i64::from(l) + 1)
}

fn agent_record(row: &Row) -> Result<ApiAgentRecord, Error> {
    Ok(ApiAgentRecord {
        id: row.try_get(0)?,
        config: row.try_get(1)?,
        created_at: row.try_get(2)?,
    })
}

fn session_record(row: &Row) -> Result<ApiSessionRecord, Error> {
    let id: &str = row.try_get(0)?;
    Ok(ApiSessionRecord {
        id: ConversationId::parse(id)
            .map_err(|e| corrupt(format!("bad session id '{id}': {e}")))?,
        agent_id: row.try_get(1)?,
        name: row.try_get(2)?,
        created_at: row.try_get(3)?,
    })
}

/// The run holding one of `conversations`, if a turn runs on one; their
/// rows stay locked until the transaction ends.
async fn running(
    tx: &Transaction<'_>,
    conversations: &[String],
) -> Result<Option<ConversationAccess>, Error> {
    let rows = tx
        .query(
            "SELECT active_response_id FROM conversations WHERE id = ANY($1) \
             ORDER BY id FOR UPDATE",
            &[&conversations],
        )
        .await?;
    for row in rows {
        if let Some(response) = row.try_get::<_, Option<&str>>(0)? {
            return Ok(Some(ConversationAccess::Busy(parse_id(response)?)));
        }
    }
    Ok(None)
}

/// Deletes sessions' records, their conversations and the runs on them.
async fn delete_sessions(tx: &Transaction<'_>, conversations: &[String]) -> Result<(), Error> {
    for statement in [
        "DELETE FROM items WHERE response_id IN \
         (SELECT id FROM responses WHERE conversation_id = ANY($1))",
        "DELETE FROM events WHERE response_id IN \
         (SELECT id FROM responses WHERE conversation_id = ANY($1))",
        "DELETE FROM responses WHERE conversation_id = ANY($1)",
        "DELETE FROM conversation_items WHERE conversation_id = ANY($1)",
        "DELETE FROM conversations WHERE id = ANY($1)",
        "DELETE FROM api_agent_sessions WHERE conversation_id = ANY($1)",
    ] {
        tx.execute(statement, &[&conversations]).await?;
    }
    Ok(())
}

#[async_trait]
impl ApiAgentStore for PostgresStore {
    async fn create_api_agent(&self, agent: &ApiAgentRecord) -> Result<(), StoreError> {
        neutral(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO api_agents (id, config, created_at) VALUES ($1, $2, $3)",
                    &[&agent.id, &agent.config, &agent.created_at],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn api_agent(&self, id: &str) -> Result<Option<ApiAgentRecord>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT id, config, created_at FROM api_agents WHERE id = $1",
                    &[&id],
                )
                .await?;
            row.as_ref().map(agent_record).transpose()
        })
        .await
    }

    async fn list_api_agents(
        &self,
        start_index: u32,
        limit: Option<u32>,
    ) -> Result<ListPage<ApiAgentRecord>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id, config, created_at FROM api_agents ORDER BY ord \
                     LIMIT $1 OFFSET $2",
                    &[&sql_limit(limit), &i64::from(start_index)],
                )
                .await?;
            let records = rows.iter().map(agent_record).collect::<Result<_, _>>()?;
            Ok(ListPage::from_rows(records, limit))
        })
        .await
    }

    async fn delete_api_agent(&self, id: &str) -> Result<ConversationAccess, StoreError> {
        neutral(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let sessions: Vec<String> = tx
                .query(
                    "SELECT conversation_id FROM api_agent_sessions WHERE agent_id = $1",
                    &[&id],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            if let Some(busy) = running(&tx, &sessions).await? {
                return Ok(busy);
            }
            delete_sessions(&tx, &sessions).await?;
            let deleted = tx
                .execute("DELETE FROM api_agents WHERE id = $1", &[&id])
                .await?;
            tx.commit().await?;
            Ok(if deleted > 0 {
                ConversationAccess::Done
            } else {
                ConversationAccess::NotFound
            })
        })
        .await
    }

    async fn create_api_session(&self, session: &ApiSessionRecord) -> Result<(), StoreError> {
        neutral(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO api_agent_sessions (conversation_id, agent_id, name, created_at) \
                     VALUES ($1, $2, $3, $4)",
                    &[
                        &session.id.as_str(),
                        &session.agent_id,
                        &session.name,
                        &session.created_at,
                    ],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn api_session(
        &self,
        agent_id: &str,
        id: &ConversationId,
    ) -> Result<Option<ApiSessionRecord>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT conversation_id, agent_id, name, created_at FROM api_agent_sessions \
                     WHERE conversation_id = $1 AND agent_id = $2",
                    &[&id.as_str(), &agent_id],
                )
                .await?;
            row.as_ref().map(session_record).transpose()
        })
        .await
    }

    async fn list_api_sessions(
        &self,
        agent_id: &str,
        start_index: u32,
        limit: Option<u32>,
    ) -> Result<ListPage<ApiSessionRecord>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT conversation_id, agent_id, name, created_at FROM api_agent_sessions \
                     WHERE agent_id = $1 ORDER BY ord LIMIT $2 OFFSET $3",
                    &[&agent_id, &sql_limit(limit), &i64::from(start_index)],
                )
                .await?;
            let records = rows.iter().map(session_record).collect::<Result<_, _>>()?;
            Ok(ListPage::from_rows(records, limit))
        })
        .await
    }

    async fn delete_api_session(
        &self,
        agent_id: &str,
        id: &ConversationId,
    ) -> Result<ConversationAccess, StoreError> {
        neutral(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let exists = tx
                .query_opt(
                    "SELECT 1 FROM api_agent_sessions WHERE conversation_id = $1 AND agent_id = $2",
                    &[&id.as_str(), &agent_id],
                )
                .await?
                .is_some();
            if !exists {
                return Ok(ConversationAccess::NotFound);
            }
            let session = [id.as_str().to_owned()];
            if let Some(busy) = running(&tx, &session).await? {
                return Ok(busy);
            }
            delete_sessions(&tx, &session).await?;
            tx.commit().await?;
            Ok(ConversationAccess::Done)
        })
        .await
    }
}
