//! A conversation claimed by one response: released on every path.

use spool_core::ids::{ConversationId, ResponseId};
use spool_store::Store;
use std::sync::Arc;

/// Releases a conversation claimed for a response unless disarmed: a
/// request dropped mid-claim, or a run that never starts, leaves nothing
/// locked.
pub(super) struct ClaimGuard {
    store: Arc<dyn Store>,
    conversation: ConversationId,
    response: ResponseId,
    armed: bool,
}

impl ClaimGuard {
    pub(super) fn new(
        store: Arc<dyn Store>,
        conversation: ConversationId,
        response: ResponseId,
    ) -> Self {
        Self {
            store,
            conversation,
            response,
            armed: true,
        }
    }

    /// Forgets the claim: it was refused, so there is nothing to release.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }

    /// Releases the claim now and waits for it. A run's stored end releases
    /// its claim with its final items; this covers a run that never got
    /// that far.
    pub(super) async fn release(mut self) {
        self.armed = false;
        if let Err(e) = self
            .store
            .release_conversation(&self.conversation, &self.response)
            .await
        {
            tracing::error!(response_id = %self.response, error = %e, "cannot release the conversation");
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        if self.armed
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (store, conversation, response) = (
                self.store.clone(),
                self.conversation.clone(),
                self.response.clone(),
            );
            handle.spawn(async move {
                let _ = store.release_conversation(&conversation, &response).await;
            });
        }
    }
}
