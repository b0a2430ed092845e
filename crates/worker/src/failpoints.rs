//! Test-only fault injection. Built with the `failpoints` feature (which `scripts/test`
//! enables), the points are configured at run time by the `FAILPOINTS` environment variable
//! (`name=action;...`, see the `fail` crate); without it every point is a constant and no
//! failpoint code is compiled.

/// `worker::heartbeat`: when active (`return` for every attempt, `return(N)` for attempt `N`
/// only), the heartbeat of the run's claim fails as if the store were unreachable.
#[cfg(feature = "failpoints")]
pub(crate) fn heartbeat_fails(attempt: i64) -> bool {
    fail::fail_point!("worker::heartbeat", |argument| {
        argument.is_none_or(|wanted| wanted.trim() == attempt.to_string())
    });
    false
}

#[cfg(not(feature = "failpoints"))]
pub(crate) fn heartbeat_fails(_attempt: i64) -> bool {
    false
}
