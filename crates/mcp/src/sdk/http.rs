//! Streamable HTTP serving: a tower service (one MCP session per client session, stateful as
//! hud requires) and a small axum server around it.

use super::handler::{EnvCore, EnvHandler};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The MCP streamable-HTTP endpoint of an environment, as a tower `Service`.
///
/// Mount it with `axum::Router::new().nest_service("/mcp", service)`. Each MCP session
/// (`Mcp-Session-Id`) gets its own handler, so scenario state never leaks between clients.
#[derive(Clone)]
pub struct HttpService {
    inner: StreamableHttpService<EnvHandler, LocalSessionManager>,
}

impl HttpService {
    /// `allowed_hosts`: `Host` values accepted (DNS-rebinding guard); `None` turns the check
    /// off, `Some(empty)` keeps rmcp's loopback-only default.
    pub(crate) fn new(core: Arc<EnvCore>, allowed_hosts: Option<Vec<String>>) -> Self {
        let mut config = StreamableHttpServerConfig::default();
        match allowed_hosts {
            None => config = config.disable_allowed_hosts(),
            Some(hosts) if hosts.is_empty() => {}
            Some(hosts) => config = config.with_allowed_hosts(hosts),
        }
        let factory = move || Ok(EnvHandler::new(core.clone()));
        let inner =
            StreamableHttpService::new(factory, Arc::new(LocalSessionManager::default()), config);
        Self { inner }
    }
}

impl fmt::Debug for HttpService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpService").finish_non_exhaustive()
    }
}

impl tower::Service<Request> for HttpService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let is_delete = request.method() == Method::DELETE;
            let mut response = inner.handle(request).await.into_response();
            // rmcp answers a session DELETE with 202; FastMCP with 200, and the Python MCP
            // client logs "Session termination failed: 202" for anything but 200/204.
            if is_delete && response.status() == StatusCode::ACCEPTED {
                *response.status_mut() = StatusCode::OK;
            }
            Ok(response)
        })
    }
}
