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

/// What `worker::append` does to the next event a run's writer stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub(crate) enum AppendFault {
    /// Stored as usual.
    None,
    /// Stored after this many milliseconds (`return(MS)`): a slow store.
    Delay(u64),
    /// Refused as if the store were unreachable (`return` or `return(fail)`).
    Fail,
}

/// `worker::append`: when active, each event a run's writer stores is delayed
/// (`return(MS)`) or refused (`return`, `return(fail)`).
#[cfg(feature = "failpoints")]
pub(crate) fn append_fault() -> AppendFault {
    fail::fail_point!("worker::append", |argument| {
        match argument.as_deref().map(str::trim) {
            None | Some("fail") => AppendFault::Fail,
            Some(ms) => ms.parse().map_or(AppendFault::Fail, AppendFault::Delay),
        }
    });
    AppendFault::None
}

#[cfg(not(feature = "failpoints"))]
pub(crate) fn append_fault() -> AppendFault {
    AppendFault::None
}
