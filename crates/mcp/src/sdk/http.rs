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

/// Which `Host` headers the endpoint accepts (rmcp's DNS-rebinding guard).
#[derive(Debug, Clone)]
pub(crate) enum HostCheck {
    /// rmcp's default: `localhost`, `127.0.0.1`, `::1`.
    Loopback,
    /// These hosts (or `host:port` authorities) only.
    Only(Vec<String>),
    /// Any host.
    Any,
}

/// The MCP streamable-HTTP endpoint of an environment, as a tower `Service`.
///
/// Mount it with `axum::Router::new().nest_service("/mcp", service)`. Each MCP session
/// (`Mcp-Session-Id`) gets its own handler, so scenario state never leaks between clients.
#[derive(Clone)]
pub struct HttpService {
    inner: StreamableHttpService<EnvHandler, LocalSessionManager>,
}

impl HttpService {
    pub(crate) fn new(core: Arc<EnvCore>, hosts: HostCheck) -> Self {
        let config = StreamableHttpServerConfig::default();
        let config = match hosts {
            HostCheck::Loopback => config,
            HostCheck::Only(hosts) => config.with_allowed_hosts(hosts),
            HostCheck::Any => config.disable_allowed_hosts(),
        };
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
