//! Named agents.

use super::SqliteStore;
use crate::codec::{corrupt, to_json};
use crate::{AgentStore, StoreError};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use spool_core::agent_config::AgentDefinition;

#[async_trait]
impl AgentStore for SqliteStore {
    async fn put_agent(&self, agent: &AgentDefinition) -> Result<(), StoreError> {
        let name = agent.name.clone();
        let definition = to_json(agent)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.on_writer(move |conn| {
            conn.execute(
                "INSERT INTO agents (name, definition, updated_at) VALUES (?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, \
                 updated_at = excluded.updated_at",
                params![name, definition, now],
            )?;
            Ok(())
        })
        .await
    }

    async fn agent(&self, name: &str) -> Result<Option<AgentDefinition>, StoreError> {
        let name = name.to_owned();
        self.read(move |conn| {
            let definition: Option<String> = conn
                .prepare_cached("SELECT definition FROM agents WHERE name = ?")?
                .query_row([&name], |r| r.get(0))
                .optional()?;
            Ok(definition
                .map(|d| {
                    serde_json::from_str(&d)
                        .map_err(|e| corrupt(format!("bad agent '{name}': {e}")))
                })
                .transpose()?)
        })
        .await
    }

    async fn retain_agents(&self, names: &[String]) -> Result<(), StoreError> {
        let names = names.to_vec();
        self.on_writer(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let stored: Vec<String> = tx
                .prepare("SELECT name FROM agents")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for name in stored.iter().filter(|n| !names.contains(n)) {
                tx.execute("DELETE FROM agents WHERE name = ?", [name])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
