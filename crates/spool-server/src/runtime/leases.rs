//! With a store shared by several instances: this instance's lease,
//! renewed every third of its time-to-live while the instance lives, and
//! the end of runs whose executor's lease ran out (an instance killed, or
//! cut off from the database for longer than the lease).
//!
//! Beside the renewals (never delaying them) the instance takes over the
//! runs lost with dead instances ([`ExecutionLeases::take_over_orphans`] gives each to one
//! instance only) and ends each `failed` (`server_error`, naming the lost
//! executor) after its last stored event. Their subscribers, here and on
//! every other instance, see that end through the bus like any commit.

use super::recovery::{self, Ended};
use super::{LeaseSettings, Runtime};
use spool_core::run::RunError;
use spool_store::{ExecutionLeases, Orphan, Store};
use std::sync::Weak;
use tokio::time::MissedTickBehavior;

/// Renews the lease until the runtime has stopped, and sweeps orphaned and
/// stray runs beside it. The two never wait for each other: a slow sweep
/// (many runs lost with a dead instance, a slow database) must not let this
/// instance's own lease run out, or others would end its healthy runs.
pub(super) async fn keep(runtime: Weak<Runtime>, settings: LeaseSettings) {
    tokio::spawn(sweep(runtime.clone(), settings.clone()));
    let period = settings.ttl / 3;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let stopped = match runtime.upgrade() {
            Some(runtime) => runtime.stopped.clone(),
            None => return,
        };
        tokio::select! {
            () = stopped.cancelled() => return,
            _ = tick.tick() => {}
        }
        // A renewal stuck behind a busy pool is abandoned at the next tick
        // and tried again, while the lease has two periods left.
        match tokio::time::timeout(period, settings.leases.renew_lease(settings.ttl)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot renew this instance's lease"),
            Err(_) => tracing::error!(
                waited_ms = period.as_millis() as u64,
                "renewing this instance's lease timed out; trying again"
            ),
        }
    }
}

/// Ends orphaned runs (lost with dead instances) and this instance's stray
/// runs, every third of the lease, until the runtime has stopped.
async fn sweep(runtime: Weak<Runtime>, settings: LeaseSettings) {
    let mut tick = tokio::time::interval(settings.ttl / 3);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let (stopped, store) = match runtime.upgrade() {
            Some(runtime) => (runtime.stopped.clone(), runtime.store.clone()),
            None => return,
        };
        tokio::select! {
            () = stopped.cancelled() => return,
            _ = tick.tick() => {}
        }
        end_orphans(store.as_ref(), settings.leases.as_ref()).await;
        if let Some(runtime) = runtime.upgrade() {
            end_strays(&runtime, settings.leases.as_ref()).await;
        }
    }
}

/// Ends the runs this instance is the executor of but no longer runs: a
/// run taken over whose end could not be written at once (its lost
/// executor, cut off rather than dead, wrote meanwhile), or one of its own
/// whose end could not be stored when it stopped.
async fn end_strays(runtime: &Runtime, leases: &dyn ExecutionLeases) {
    let own = match leases.own_unfinished().await {
        Ok(own) => own,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list this instance's unfinished runs");
            return;
        }
    };
    // Read after the list: a run in the list that is not in the active set
    // now has left this process (a run joins the set before its first write).
    for id in own.into_iter().filter(|id| !runtime.is_running(id)) {
        let error = RunError::new(
            "server_error",
            "This response stopped without a stored end; it was ended afterwards.",
        );
        match recovery::end_run(runtime.store.as_ref(), &id, error).await {
            Ok(Ended::Logged) => {
                tracing::warn!(response_id = %id, "ended a run of this instance that had stopped without an end");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(response_id = %id, error = %e, "cannot end a stopped run; trying again")
            }
        }
    }
}

/// The error a run lost with its executor ends with.
pub(super) fn lost_executor(executor: &str) -> RunError {
    RunError::new(
        "server_error",
        format!(
            "The instance executing this response ({executor}) stopped before it ended; \
             another instance ended it."
        ),
    )
}

/// Takes over the runs of instances whose leases ran out and ends them.
/// Returns how many were ended with a new terminal event.
pub(super) async fn end_orphans(store: &dyn Store, leases: &dyn ExecutionLeases) -> usize {
    let orphans = match leases.take_over_orphans().await {
        Ok(orphans) => orphans,
        Err(e) => {
            tracing::error!(error = %e, "cannot look for runs lost with other instances");
            return 0;
        }
    };
    let mut ended = 0;
    for Orphan { id, executor } in orphans {
        match recovery::end_run(store, &id, lost_executor(&executor)).await {
            Ok(Ended::Logged) => {
                tracing::warn!(response_id = %id, executor, "ended a run lost with its executor");
                ended += 1;
            }
            Ok(_) => {}
            // Taken over but not ended: it is this instance's now, and is
            // tried again as one of its strays.
            Err(e) => {
                tracing::error!(response_id = %id, executor, error = %e, "cannot end a run lost with its executor")
            }
        }
    }
    ended
}
