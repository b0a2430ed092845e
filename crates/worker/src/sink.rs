//! The event sink the agent loop records into: the run's trace in the store, written under
//! the run's lease (an execution whose claim was taken over records nothing more, and stops).
//! It also keeps the step and token totals, so that a run cut short by a deadline still
//! reports what it used.
//!
//! Events are written by a writer task of the run, in the order they were recorded, while
//! the run goes on: a run does not wait for each commit before its next model or tool call
//! (on PostgreSQL each commit waits for the WAL's flush), and the events that wait for the
//! writer go to the store together, in one commit. A failure of the writer (a lost
//! lease, an unreachable store) stops the run at its next event; [`StoreSink::flush`] waits
//! for every event recorded so far, and is called before a run's end is written.

use crate::failpoints::AppendFault;
use crate::notifier::RunNotifier;
use async_trait::async_trait;
use rollout_domain::{EventKind, EventSink, RecordError, RunEvent, RunOutcome, RunStatus, Usage};
use rollout_models::Price;
use rollout_store::{FinishRun, Lease, PendingEvent, RunProgress, Store};
use rollout_telemetry::RunObserver;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The most events a run's writer hands to the store before it waits for them.
const MAX_HANDED: usize = 64;

/// An event for the writer: when it happened (unix milliseconds) and a model call's totals
/// (written in the same round trip).
struct Recorded {
    event: EventKind,
    at_ms: i64,
    progress: Option<RunProgress>,
}

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
    exceeded: OnceLock<RunOutcome>,
    /// Metrics and spans of the run: sees each event once it is stored.
    observer: Option<Arc<RunObserver>>,
    /// The writer task's queue, started with the first event.
    writer: OnceLock<mpsc::UnboundedSender<Recorded>>,
    /// How many events were given to the writer.
    recorded: AtomicU64,
    /// How many the writer has dealt with (stored, or dropped after a failure).
    written: watch::Sender<u64>,
    /// The writer's first failure: nothing recorded after it is stored (only the events
    /// handed to the store with it may be).
    failure: Arc<OnceLock<RecordError>>,
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
            exceeded: OnceLock::new(),
            observer: None,
            writer: OnceLock::new(),
            recorded: AtomicU64::new(0),
            written: watch::Sender::new(0),
            failure: Arc::new(OnceLock::new()),
        }
    }

    /// Shows every stored event to `observer` (metrics, spans).
    pub(crate) fn with_observer(mut self, observer: Arc<RunObserver>) -> Self {
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

    /// Cancelled once the run's tokens went over its budget (as its model call is recorded).
    pub(crate) fn budget_exceeded(&self) -> &CancellationToken {
        &self.budget_exceeded
    }

    /// Cancelled once a write was refused because another claim owns the run.
    pub(crate) fn lease_lost(&self) -> &CancellationToken {
        &self.lease_lost
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

    /// Waits until every event recorded so far is stored: the writer's failure if one was
    /// not (nothing after it was).
    pub(crate) async fn flush(&self) -> Result<(), RecordError> {
        let recorded = self.recorded.load(Ordering::Acquire);
        let mut written = self.written.subscribe();
        if written
            .wait_for(|written| *written >= recorded)
            .await
            .is_err()
        {
            return Err(RecordError("the run's event writer stopped".into()));
        }
        self.failed()
    }

    /// The writer's failure, once it has failed.
    fn failed(&self) -> Result<(), RecordError> {
        match self.failure.get() {
            Some(failure) => Err(failure.clone()),
            None => Ok(()),
        }
    }

    /// The writer's queue; the first call starts it.
    fn writer(&self) -> &mpsc::UnboundedSender<Recorded> {
        self.writer.get_or_init(|| {
            let (sender, events) = mpsc::unbounded_channel();
            let writer = Writer {
                store: self.store.clone(),
                lease: self.lease.clone(),
                notifier: self.notifier.clone(),
                observer: self.observer.clone(),
                lease_lost: self.lease_lost.clone(),
                failure: self.failure.clone(),
                written: self.written.clone(),
            };
            tokio::spawn(writer.write(events));
            sender
        })
    }

    /// Cancels [`StoreSink::budget_exceeded`] when `usage` is over a budget of the run.
    fn check_budgets(&self, usage: &Usage) {
        let over_tokens = self
            .token_budget
            .is_some_and(|budget| usage.total() > budget);
        let over_cost = self
            .cost_budget
            .is_some_and(|(budget, price)| price.cost(usage) > budget);
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
}

#[async_trait]
impl EventSink for StoreSink {
    /// Hands `event` to the run's writer; fails when an earlier event could not be stored.
    async fn record(&self, event: EventKind) -> Result<(), RecordError> {
        self.failed()?;
        let progress = match &event {
            EventKind::ModelCall { step, usage, .. } => {
                let mut totals = self.totals.lock().map_err(|e| RecordError(e.to_string()))?;
                totals.0 = i64::from(*step);
                totals.1.add(usage);
                Some(RunProgress {
                    steps: totals.0,
                    usage: totals.1,
                })
            }
            _ => None,
        };
        self.recorded.fetch_add(1, Ordering::AcqRel);
        let recorded = Recorded {
            event,
            at_ms: rollout_domain::time::now_ms(),
            progress,
        };
        if self.writer().send(recorded).is_err() {
            return Err(RecordError("the run's event writer stopped".into()));
        }
        if let Some(progress) = progress {
            self.check_budgets(&progress.usage);
        }
        Ok(())
    }
}

/// The run's writer task: stores the events in order under the lease, then shows each to
/// the observer and wakes the run's event streams.
struct Writer {
    store: Store,
    lease: Lease,
    notifier: Arc<RunNotifier>,
    observer: Option<Arc<RunObserver>>,
    lease_lost: CancellationToken,
    failure: Arc<OnceLock<RecordError>>,
    written: watch::Sender<u64>,
}

impl Writer {
    /// Runs until the sink is dropped and every event it was given is dealt with. The events
    /// waiting when it wakes are all handed to the store before it waits for them, so that
    /// they go in one transaction (one commit) when the store is slower than the run.
    async fn write(self, mut events: mpsc::UnboundedReceiver<Recorded>) {
        let mut waiting = Vec::new();
        while events.recv_many(&mut waiting, MAX_HANDED).await > 0 {
            let count = waiting.len() as u64;
            let mut pending = Vec::with_capacity(waiting.len());
            for recorded in waiting.drain(..) {
                if self.failure.get().is_some() {
                    break;
                }
                if let Some(event) = self.submit(recorded).await {
                    pending.push(event);
                }
            }
            for event in pending {
                self.stored(event.stored().await);
            }
            self.written.send_modify(|written| *written += count);
        }
    }

    /// Hands one event to the store: `None` when it was refused at once.
    async fn submit(&self, recorded: Recorded) -> Option<PendingEvent> {
        match crate::failpoints::append_fault() {
            AppendFault::None => {}
            AppendFault::Delay(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            AppendFault::Fail => {
                let _ = self.failure.set(RecordError(
                    "the store refused the event (failpoint worker::append)".into(),
                ));
                return None;
            }
        }
        let submitted = self.store.submit_leased_event(
            &self.lease,
            recorded.event,
            recorded.progress.as_ref(),
            recorded.at_ms,
        );
        match submitted {
            Ok(event) => Some(event),
            Err(error) => {
                let _ = self.failure.set(RecordError(error.to_string()));
                None
            }
        }
    }

    /// Shows a stored event to the observer and the run's event streams, or keeps why it
    /// was not stored.
    fn stored(&self, stored: rollout_store::Result<Option<RunEvent>>) {
        match stored {
            Ok(Some(appended)) => {
                if let Some(observer) = &self.observer {
                    observer.event(&appended);
                }
                self.notifier.event_appended(self.lease.run_id.clone());
            }
            Ok(None) => {
                let _ = self.failure.set(RecordError(format!(
                    "the lease of run {} (attempt {}) was lost",
                    self.lease.run_id, self.lease.attempt
                )));
                self.lease_lost.cancel();
            }
            Err(error) => {
                let _ = self.failure.set(RecordError(error.to_string()));
            }
        }
    }
}
