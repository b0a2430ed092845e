//! The HTTP server: HTTP/1.1 on hyper with the limits `axum::serve` does not set. A client
//! must send a request's headers within `header_read_timeout` (the same timer closes a
//! keep-alive connection idle for that long, since hyper starts it as soon as the
//! connection waits for a request); a request body that sends nothing for
//! `request_body_timeout` is cut off (`routes.rs`); and at most `max_connections`
//! connections are served at once: beyond, new ones wait in the listen backlog, so a flood
//! of idle sockets cannot exhaust the process's file descriptors.
//!
//! Each request carries the peer address (`ConnectInfo<SocketAddr>`), for the sign-in
//! throttle. Shutdown stops accepting, asks every connection to finish its request in
//! flight, and waits for them, as `axum::serve` does. Connections allow upgrades (hud 0.6
//! clients' tunnels are WebSockets, `runtime.rs`); hyper-util's `GracefulShutdown` cannot
//! watch an upgradeable connection, so each connection task watches the shutdown itself and
//! the end waits until every connection has returned its place.

use axum::Router;
use axum::extract::Request;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

/// Timeouts and the connection cap of the HTTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Budget to receive a request's headers; also how long an idle keep-alive connection
    /// stays open.
    pub header_read_timeout: Duration,
    /// Longest pause while a request body is being received.
    pub request_body_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_body_timeout: Duration::from_secs(60),
            max_connections: 1024,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight end.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let max_connections = limits.max_connections.max(1);
    let places = Arc::new(Semaphore::new(max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        // A place first, then the accept: at the cap, connections wait in the backlog.
        let place = tokio::select! {
            place = places.clone().acquire_owned() => place,
            () = &mut shutdown => break,
        };
        let Ok(place) = place else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Small answers (an SSE event, a JSON body after its headers) must not wait for the
        // peer's delayed ACK.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        // With upgrades: hud 0.6 clients' tunnels are WebSockets (`runtime.rs`).
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = async { drop(stop.wait_for(|stopping| *stopping).await) } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                // Header timeouts, resets and malformed requests end up here.
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(place);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection returns its place when it ends.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = places.acquire_many(all).await;
    Ok(())
}

/// After a failed `accept`: per-connection errors are skipped; others (out of file
/// descriptors) are logged and waited out, as `axum::serve` does.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
