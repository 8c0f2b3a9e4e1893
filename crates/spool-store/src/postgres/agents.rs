//! Named agents.

use super::{PostgresStore, neutral};
use crate::codec::{corrupt, to_json};
use crate::{AgentStore, StoreError};
use async_trait::async_trait;
use spool_core::agent_config::AgentDefinition;

#[async_trait]
impl AgentStore for PostgresStore {
    async fn put_agent(&self, agent: &AgentDefinition) -> Result<(), StoreError> {
        let definition = to_json(agent)?;
        neutral(async {
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO agents (name, definition, updated_at) \
                     VALUES ($1, $2, extract(epoch FROM now())::int8) \
                     ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, \
                     updated_at = excluded.updated_at",
                    &[&agent.name, &definition],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn agent(&self, name: &str) -> Result<Option<AgentDefinition>, StoreError> {
        neutral(async {
            let client = self.client().await?;
            let row = client
                .query_opt("SELECT definition FROM agents WHERE name = $1", &[&name])
                .await?;
            let Some(row) = row else { return Ok(None) };
            let definition: &str = row.try_get(0)?;
            Ok(Some(serde_json::from_str(definition).map_err(|e| {
                corrupt(format!("bad agent '{name}': {e}"))
            })?))
        })
        .await
    }

    async fn retain_agents(&self, names: &[String]) -> Result<(), StoreError> {
        neutral(async {
            let client = self.client().await?;
            client
                .execute("DELETE FROM agents WHERE NOT (name = ANY($1))", &[&names])
                .await?;
            Ok(())
        })
        .await
    }
}
