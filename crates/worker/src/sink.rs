//! The event sink the agent loop records into: the run's trace in the store, written under
//! the run's lease (an execution whose claim was taken over records nothing more, and stops).
//! It also keeps the step and token totals, so that a run cut short by a deadline still
//! reports what it used.

use crate::notifier::RunNotifier;
use async_trait::async_trait;
use rollout_domain::{EventKind, EventSink, RecordError, RunOutcome, RunStatus, Usage};
use rollout_models::Price;
use rollout_store::{FinishRun, Lease, RunProgress, Store};
use std::sync::Arc;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// Appends events to one run's trace.
pub(crate) struct StoreSink {
    store: Store,
    lease: Lease,
    /// Wakes this process's event streams following the run.
    notifier: Arc<RunNotifier>,
    /// Cancelled when the store refused a write because the claim was taken over.
    lease_lost: CancellationToken,
    totals: Mutex<(i64, Usage)>,
    /// The run's `max_total_tokens`, and what is cancelled once the totals go over it.
    token_budget: Option<u64>,
    /// The run's `max_cost_usd` and the model's price.
    cost_budget: Option<(f64, Price)>,
    budget_exceeded: CancellationToken,
    /// Which budget ran out first.
    exceeded: std::sync::OnceLock<RunOutcome>,
    /// Metrics and spans of the run: sees each event once it is stored.
    observer: Option<Arc<rollout_telemetry::RunObserver>>,
}

impl StoreSink {
    pub(crate) fn new(store: Store, lease: Lease, notifier: Arc<RunNotifier>) -> Self {
        Self {
            store,
            lease,
            notifier,
            lease_lost: CancellationToken::new(),
            totals: Mutex::new((0, Usage::default())),
            token_budget: None,
            cost_budget: None,
            budget_exceeded: CancellationToken::new(),
            exceeded: std::sync::OnceLock::new(),
            observer: None,
        }
    }

    /// Shows every stored event to `observer` (metrics, spans).
    pub(crate) fn with_observer(mut self, observer: Arc<rollout_telemetry::RunObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Stops the run's agent phase (see [`StoreSink::budget_exceeded`]) once its tokens go
    /// over `budget`.
    pub(crate) fn with_token_budget(mut self, budget: Option<u64>) -> Self {
        self.token_budget = budget;
        self
    }

    /// Stops the run's agent phase once its cost, at `price`, goes over `budget` USD.
    pub(crate) fn with_cost_budget(mut self, budget: Option<f64>, price: Option<Price>) -> Self {
        self.cost_budget = budget.zip(price);
        self
    }

    /// Which budget ran out (`TokenBudgetExceeded` or `CostBudgetExceeded`), once one has.
    pub(crate) fn exceeded(&self) -> RunOutcome {
        self.exceeded
            .get()
            .copied()
            .unwrap_or(RunOutcome::TokenBudgetExceeded)
    }

    /// Cancelled once the run's tokens went over its budget (after recording the model call).
    pub(crate) fn budget_exceeded(&self) -> &CancellationToken {
        &self.budget_exceeded
    }

    /// Cancelled once a write was refused because another claim owns the run.
    pub(crate) fn lease_lost(&self) -> &CancellationToken {
        &self.lease_lost
    }

    /// Refuses further recording: the claim is gone.
    fn lost(&self) -> RecordError {
        self.lease_lost.cancel();
        RecordError(format!(
            "the lease of run {} (attempt {}) was lost",
            self.lease.run_id, self.lease.attempt
        ))
    }

    /// How a run ends without a result (cancelled, failed, a phase out of time): no evaluation, the
    /// steps and tokens used until then, and `error`.
    pub(crate) fn ended_early(&self, status: RunStatus, error: &str) -> FinishRun {
        let (steps, usage) = self.totals();
        FinishRun {
            status,
            outcome: None,
            reward: None,
            evaluation: None,
            final_response: None,
            steps,
            usage,
            error: Some(error.to_string()),
        }
    }

    /// Steps taken and tokens used so far.
    pub(crate) fn totals(&self) -> (i64, Usage) {
        self.totals.lock().map(|totals| *totals).unwrap_or_default()
    }
}

#[async_trait]
impl EventSink for StoreSink {
    async fn record(&self, event: EventKind) -> Result<(), RecordError> {
        let progress = match &event {
            EventKind::ModelCall { step, usage, .. } => {
                let mut totals = self.totals.lock().map_err(|e| RecordError(e.to_string()))?;
                totals.0 = i64::from(*step);
                totals.1.add(usage);
                Some(*totals)
            }
            _ => None,
        };
        // A model call's totals are written with its event, in the same round trip.
        let run_progress = progress.map(|(steps, usage)| RunProgress { steps, usage });
        let appended = self
            .store
            .append_leased_event_and_progress(&self.lease, &event, run_progress.as_ref())
            .await
            .map_err(|e| RecordError(e.to_string()))?;
        let Some(appended) = appended else {
            return Err(self.lost());
        };
        if let Some(observer) = &self.observer {
            observer.event(&appended);
        }
        self.notifier.event_appended(self.lease.run_id.clone());
        if let Some((_, usage)) = progress {
            let over_tokens = self
                .token_budget
                .is_some_and(|budget| usage.total() > budget);
            let over_cost = self
                .cost_budget
                .is_some_and(|(budget, price)| price.cost(&usage) > budget);
            let outcome = match (over_tokens, over_cost) {
                (true, _) => Some(RunOutcome::TokenBudgetExceeded),
                (false, true) => Some(RunOutcome::CostBudgetExceeded),
                (false, false) => None,
            };
            if let Some(outcome) = outcome {
                let _ = self.exceeded.set(outcome);
                self.budget_exceeded.cancel();
            }
        }
        Ok(())
    }
}
