//! The store's stories, one module per subject, each run on every available backend.

mod common;
mod connections;
mod deploys;
mod envs;
mod events;
mod gateway;
mod jobs;
mod keys;
mod projects;
mod queue;
mod reviews;
mod run_api;
mod runs;
mod scale;
mod traces;
mod training;

/// Runs each story on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set, each in a
/// fresh database (a temp file, or a schema of its own), under a timeout.
macro_rules! on_every_backend {
    ($($module:ident :: $story:ident => $name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::common::TestDb::sqlite().await;
                    super::common::within_timeout(super::$module::$story(&db)).await;
                    db.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = super::common::TestDb::postgres().await else {
                        return;
                    };
                    super::common::within_timeout(super::$module::$story(&db)).await;
                    db.cleanup().await;
                }
            )*
        }
    };
}

on_every_backend! {
    keys::keys_are_stored_hashed_verified_and_revoked => keys,
    projects::settings_are_stored_per_project_and_usage_is_counted => project_settings,
    envs::env_versions_are_numbered_and_reregistration_is_a_noop => env_versions,
    envs::a_claim_reads_the_id_of_its_runs_version => claim_version_id,
    envs::serving_versions_are_kept_until_another_process_changes_them => serving_versions,
    deploys::build_logs_active_runs_and_delete_keep_traces => env_deploys,
    runs::runs_are_inserted_read_and_listed_with_filters_and_cursor => runs_listing,
    runs::cancel_stops_queued_runs_and_flags_running_ones => cancel,
    runs::concurrent_cancels_of_a_queued_run_cancel_it_once => concurrent_cancels,
    events::events_are_numbered_from_one_and_listed_after_a_seq => events,
    events::concurrent_appends_get_distinct_consecutive_seqs => concurrent_events,
    events::concurrent_leased_and_plain_appends_get_consecutive_seqs => concurrent_leased_events,
    events::pages_of_events_end_at_their_byte_budget => event_pages,
    events::many_runs_appending_at_once_each_get_their_own_answer => many_runs_appending,
    events::events_handed_over_together_are_stored_in_order => events_handed_over,
    events::inserts_and_appends_handed_over_together_each_get_their_own_answer => inserts_with_appends,
    events::a_finish_waiting_for_another_writer_numbers_its_event_after_it => finish_after_writer,
    events::other_processes_hear_of_appended_events_and_finished_runs => notifications,
    queue::claim_heartbeat_progress_and_finish_are_fenced => claim_and_fencing,
    queue::a_finish_answers_the_run_as_a_read_returns_it => finish_answers_the_run,
    queue::concurrent_claimers_never_claim_a_run_twice => concurrent_claims,
    queue::expired_leases_are_requeued_then_failed => lease_expiry,
    queue::release_puts_a_run_back_and_the_next_claim_is_a_new_attempt => release,
    queue::a_reclaim_by_the_same_worker_fences_out_its_earlier_claim => reclaim_fencing,
    queue::queue_position_follows_claim_order => queue_position,
    run_api::idempotency_keys_return_the_same_run_and_refuse_other_requests => idempotency_keys,
    run_api::concurrent_duplicates_create_exactly_one_run => idempotency_concurrent,
    run_api::expired_idempotency_keys_are_purged_and_live_ones_kept => idempotency_purge,
    run_api::deliveries_are_logged_per_run_and_project => callback_deliveries,
    run_api::a_schedule_tick_fires_exactly_once => schedule_ticks,
    jobs::tasksets_keep_tasks_in_order_and_all_or_nothing => tasksets,
    jobs::claims_respect_a_jobs_max_concurrency => job_max_concurrency,
    jobs::concurrent_claimers_hold_a_jobs_max_concurrency => job_max_concurrency_racing,
    jobs::jobs_cancel_and_retry_only_failed_runs => job_cancel_retry,
    traces::traces_are_searched_by_every_filter_and_usage_is_summed => trace_search,
    reviews::reviews_keep_history_and_filter_traces => reviews,
    reviews::racing_reviewers_never_share_a_queue_item => review_queue_race,
    reviews::reviewers_writing_side_by_side_all_succeed => side_by_side_reviews,
    reviews::share_tokens_resolve_to_one_live_trace => share_links,
    traces::the_metadata_filter_matches_every_json_type_alike => metadata_filter,
    traces::ui_sessions_follow_their_key_and_expire => ui_sessions,
    training::datasets_jobs_and_checkpoints => training,
    gateway::gateway_runs_start_running_and_finish_fenced => gateway_runs,
    gateway::a_lost_gateway_run_fails_instead_of_going_back_to_the_queue => lost_gateway_runs_fail,
}

/// SQLite only: PostgreSQL keeps no WAL file of the store's own to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_wal_checkpointed() {
    let db = common::TestDb::sqlite().await;
    common::within_timeout(runs::a_burst_of_submitted_runs_keeps_the_wal_checkpointed(
        &db,
    ))
    .await;
    db.cleanup().await;
}

/// PostgreSQL only: a SQLite connection is in the process and cannot be cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_idle_connections_cut_off() {
    let Some(db) = common::TestDb::postgres().await else {
        return;
    };
    common::within_timeout(connections::idle_connections_cut_off_are_replaced(&db)).await;
    db.cleanup().await;
}

/// `cargo nextest run -p rollout-store --run-ignored only -E 'test(measure_claim_cost)'
/// --no-capture` (with `TEST_DATABASE_URL` for PostgreSQL): prints the claim's cost for
/// growing backlogs of a full job.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, run on demand"]
async fn measure_claim_cost() {
    let sqlite = common::TestDb::sqlite().await;
    jobs::measure_claim_cost(&sqlite).await;
    sqlite.cleanup().await;
    if let Some(postgres) = common::TestDb::postgres().await {
        jobs::measure_claim_cost(&postgres).await;
        postgres.cleanup().await;
    }
}

/// `cargo nextest run -p rollout-store --run-ignored only -E 'test(measure_stored_runs)'
/// --no-capture` (with `TEST_DATABASE_URL` for PostgreSQL): prints what a claim, an event
/// append and a page of the trace list cost with up to 1,000,000 finished runs stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, run on demand"]
async fn measure_stored_runs() {
    let sqlite = common::TestDb::sqlite().await;
    scale::measure_stored_runs(&sqlite).await;
    sqlite.cleanup().await;
    if let Some(postgres) = common::TestDb::postgres().await {
        scale::measure_stored_runs(&postgres).await;
        postgres.cleanup().await;
    }
}
