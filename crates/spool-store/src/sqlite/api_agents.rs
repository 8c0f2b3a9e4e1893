//! Agents created through the llama-stack Agents API, and their sessions.
//!
//! A session is a conversation; deleting a session deletes the
//! conversation and every run on it (its turns), and deleting an agent
//! deletes its sessions, all in one transaction, and none of it while a
//! turn runs on one of them.

use super::SqliteStore;
use super::error::Error;
use crate::codec::{corrupt, parse_id};
use crate::{
    ApiAgentRecord, ApiAgentStore, ApiSessionRecord, ConversationAccess, ListPage, StoreError,
};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use spool_core::ids::ConversationId;

/// One more row than `limit` asks for (to tell whether there are more),
/// or SQLite's "no limit".
fn sql_limit(limit: Option<u32>) -> i64 {
    limit.map_or(-1, |l| i64::from(l) + 1)
}

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn session_record(
    (id, agent_id, name, created_at): (String, String, String, i64),
) -> Result<ApiSessionRecord, StoreError> {
    Ok(ApiSessionRecord {
        id: ConversationId::parse(&id)
            .map_err(|e| corrupt(format!("bad session id '{id}': {e}")))?,
        agent_id,
        name,
        created_at,
    })
}

/// The run holding one of `conversations`, if a turn runs on one.
fn running(
    tx: &Transaction<'_>,
    conversations: &[String],
) -> Result<Option<ConversationAccess>, Error> {
    for id in conversations {
        let active: Option<String> = tx
            .query_row(
                "SELECT active_response_id FROM conversations WHERE id = ?",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        if let Some(response) = active {
            return Ok(Some(ConversationAccess::Busy(parse_id(&response)?)));
        }
    }
    Ok(None)
}

/// Deletes a session's record, its conversation and the runs on it.
fn delete_session(tx: &Transaction<'_>, conversation_id: &str) -> Result<(), Error> {
    for statement in [
        "DELETE FROM items WHERE response_id IN \
         (SELECT id FROM responses WHERE conversation_id = ?)",
        "DELETE FROM events WHERE response_id IN \
         (SELECT id FROM responses WHERE conversation_id = ?)",
        "DELETE FROM responses WHERE conversation_id = ?",
        "DELETE FROM conversation_items WHERE conversation_id = ?",
        "DELETE FROM conversations WHERE id = ?",
        "DELETE FROM api_agent_sessions WHERE conversation_id = ?",
    ] {
        tx.execute(statement, [conversation_id])?;
    }
    Ok(())
}

#[async_trait]
impl ApiAgentStore for SqliteStore {
    async fn create_api_agent(&self, agent: &ApiAgentRecord) -> Result<(), StoreError> {
        let agent = agent.clone();
        self.on_writer(move |conn| {
            conn.execute(
                "INSERT INTO api_agents (id, config, created_at) VALUES (?, ?, ?)",
                params![agent.id, agent.config, agent.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn api_agent(&self, id: &str) -> Result<Option<ApiAgentRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT config, created_at FROM api_agents WHERE id = ?")?
                .query_row([&id], |r| {
                    Ok(ApiAgentRecord {
                        id: id.clone(),
                        config: r.get(0)?,
                        created_at: r.get(1)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn list_api_agents(
        &self,
        start_index: u32,
        limit: Option<u32>,
    ) -> Result<ListPage<ApiAgentRecord>, StoreError> {
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT id, config, created_at FROM api_agents ORDER BY position \
                     LIMIT ? OFFSET ?",
                )?
                .query_map(params![sql_limit(limit), start_index], |r| {
                    Ok(ApiAgentRecord {
                        id: r.get(0)?,
                        config: r.get(1)?,
                        created_at: r.get(2)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ListPage::from_rows(rows, limit))
        })
        .await
    }

    async fn delete_api_agent(&self, id: &str) -> Result<ConversationAccess, StoreError> {
        let id = id.to_owned();
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let sessions: Vec<String> = tx
                .prepare("SELECT conversation_id FROM api_agent_sessions WHERE agent_id = ?")?
                .query_map([&id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            if let Some(busy) = running(&tx, &sessions)? {
                return Ok(busy);
            }
            for session in &sessions {
                delete_session(&tx, session)?;
            }
            let deleted = tx.execute("DELETE FROM api_agents WHERE id = ?", [&id])?;
            tx.commit()?;
            Ok(if deleted > 0 {
                ConversationAccess::Done
            } else {
                ConversationAccess::NotFound
            })
        })
        .await
    }

    async fn create_api_session(&self, session: &ApiSessionRecord) -> Result<(), StoreError> {
        let session = session.clone();
        self.on_writer(move |conn| {
            conn.execute(
                "INSERT INTO api_agent_sessions (conversation_id, agent_id, name, created_at) \
                 VALUES (?, ?, ?, ?)",
                params![
                    session.id.as_str(),
                    session.agent_id,
                    session.name,
                    session.created_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn api_session(
        &self,
        agent_id: &str,
        id: &ConversationId,
    ) -> Result<Option<ApiSessionRecord>, StoreError> {
        let (agent_id, id) = (agent_id.to_owned(), id.as_str().to_owned());
        self.read(move |conn| {
            let row = conn
                .prepare_cached(
                    "SELECT conversation_id, agent_id, name, created_at FROM api_agent_sessions \
                     WHERE conversation_id = ? AND agent_id = ?",
                )?
                .query_row([&id, &agent_id], session_row)
                .optional()?;
            Ok(row.map(session_record).transpose()?)
        })
        .await
    }

    async fn list_api_sessions(
        &self,
        agent_id: &str,
        start_index: u32,
        limit: Option<u32>,
    ) -> Result<ListPage<ApiSessionRecord>, StoreError> {
        let agent_id = agent_id.to_owned();
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT conversation_id, agent_id, name, created_at FROM api_agent_sessions \
                     WHERE agent_id = ? ORDER BY position LIMIT ? OFFSET ?",
                )?
                .query_map(
                    params![agent_id, sql_limit(limit), start_index],
                    session_row,
                )?
                .collect::<Result<Vec<_>, _>>()?;
            let records = rows
                .into_iter()
                .map(session_record)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ListPage::from_rows(records, limit))
        })
        .await
    }

    async fn delete_api_session(
        &self,
        agent_id: &str,
        id: &ConversationId,
    ) -> Result<ConversationAccess, StoreError> {
        let (agent_id, id) = (agent_id.to_owned(), id.as_str().to_owned());
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists = tx
                .prepare(
                    "SELECT 1 FROM api_agent_sessions WHERE conversation_id = ? AND agent_id = ?",
                )?
                .exists([&id, &agent_id])?;
            if !exists {
                return Ok(ConversationAccess::NotFound);
            }
            if let Some(busy) = running(&tx, std::slice::from_ref(&id))? {
                return Ok(busy);
            }
            delete_session(&tx, &id)?;
            tx.commit()?;
            Ok(ConversationAccess::Done)
        })
        .await
    }
}
