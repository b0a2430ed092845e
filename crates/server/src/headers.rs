//! Security headers on every response (pages, API, assets): a Content-Security-Policy that
//! lets a page run only the scripts and styles served from `/assets/` (no inline script,
//! no inline event handler, no `eval`), connect only to this server and be framed by
//! nobody; `X-Frame-Options` for browsers that ignore `frame-ancestors`; `nosniff`, so a
//! JSON or text body (a trace, a tool's output) is never taken for HTML or a script; and a
//! `Referrer-Policy` that keeps trace URLs out of other sites' logs.

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy of every response. `data:` images: none today, kept for inline SVG icons.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Adds the headers to every response of `router` (a handler's own value wins).
pub(crate) fn secure<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    let set = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    };
    router
        .layer(set(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(set(header::X_FRAME_OPTIONS, "DENY"))
        .layer(set(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(set(header::REFERRER_POLICY, "same-origin"))
}
