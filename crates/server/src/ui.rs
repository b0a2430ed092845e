//! The web UI: server-rendered HTML pages from askama templates (`templates/`, escaped by
//! askama, checked at compile time against the typed values each handler passes) with a
//! stylesheet and small scripts served from `/assets/` (no build step, no CDN, nothing
//! inline: the Content-Security-Policy allows `'self'` only, see `crate::headers`).
//!
//! Sign-in takes an API key and starts a session: the browser gets an HttpOnly cookie with
//! a random token, the store keeps only the token's SHA-256 (`ui_sessions`). Every page
//! needs a session. The pages reach the API through two cookie-authenticated routes,
//! `POST /ui/run` (the card's Run button; it needs the `X-Rollout-UI` header, which a
//! cross-site form cannot send) and `GET /ui/traces/{id}/events` (the live view); the job
//! and checkpoint pages post `POST /ui/datasets`, `/ui/training` and `/ui/jobs` the same way.
//! Those POSTs must also come from this site (`Origin`, see `sign_in::check_origin`), and
//! every session route counts against the key's rate limit.

mod assets;
mod environments;
pub(crate) mod html;
mod jobs;
mod review;
mod shared;
pub(crate) mod sign_in;
mod traces;
mod training;
mod usage;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::rate_limit::RateLimiter;
use crate::routes::reviews;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::sync::Arc;

/// The session cookie's name.
const COOKIE: &str = "rollout_session";
/// How long a session lasts.
const SESSION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// The pages, sign-in and sign-out, the static assets, and the UI's cookie-authenticated
/// API routes. Session routes count against the key's rate limit (`limiter`, the API's).
pub(crate) fn router(state: AppState, limiter: Arc<RateLimiter>) -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/environments") }))
        .route("/environments", get(environments::list))
        .route("/environments/{name}", get(environments::page))
        .route("/traces", get(traces::list))
        .route("/traces/{id}", get(traces::page))
        .route("/traces/{id}/timeline", get(traces::timeline))
        .route("/usage", get(usage::page))
        .route("/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::page))
        .route("/training", get(training::list))
        .route("/training/{id}", get(training::page))
        .route("/ui/jobs", post(crate::routes::jobs::create))
        .route("/ui/datasets", post(crate::routes::datasets::create))
        .route("/ui/training", post(crate::routes::training::create))
        .route("/ui/run", post(crate::routes::runs::create))
        .route("/ui/traces/{id}/events", get(crate::routes::events::stream))
        .route("/review/{queue}", get(review::queue_page))
        .route("/ui/traces/{id}/scores", post(reviews::add_score))
        .route("/ui/traces/{id}/labels", post(reviews::add_labels))
        .route(
            "/ui/traces/{id}/labels/{label}",
            axum::routing::delete(reviews::remove_label),
        )
        .route("/ui/traces/{id}/notes", post(reviews::add_note))
        .route(
            "/ui/traces/{id}/reward-override",
            axum::routing::put(reviews::put_override),
        )
        .route(
            "/ui/review-queues/{id}/complete",
            post(crate::routes::review_queues::complete),
        )
        .route_layer(from_fn_with_state(limiter, limit_session_rate))
        .route_layer(from_fn_with_state(state, require_session));
    Router::new()
        .route("/login", get(sign_in::page).post(sign_in::login))
        .route("/logout", post(sign_in::logout))
        .route("/assets/{name}", get(assets::get))
        // Signed out on purpose: the token in the URL is the credential.
        .route("/shared/{token}", get(shared::page))
        .merge(pages)
}

/// An error shown as a page.
pub(crate) struct UiError(ApiError);

impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

impl From<rollout_store::StoreError> for UiError {
    fn from(error: rollout_store::StoreError) -> Self {
        Self(error.into())
    }
}

/// The error page.
#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    section: &'a str,
    status: u16,
    message: &'a str,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            section: "",
            status: self.0.status.as_u16(),
            message: &self.0.message,
        };
        match askama::Template::render(&page) {
            Ok(body) => (self.0.status, Html(body)).into_response(),
            Err(_) => self.0.into_response(),
        }
    }
}

/// The result of a page handler.
pub(crate) type Page = Result<Html<String>, UiError>;

/// The value of cookie `name`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

/// Middleware: a valid session cookie, else a redirect to sign-in (pages) or 401 (UI API).
async fn require_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let is_api = request.uri().path().starts_with("/ui/");
    // Every change (POST, PUT, DELETE) needs the header and this site's Origin.
    let method = request.method();
    if is_api && method != axum::http::Method::GET && method != axum::http::Method::HEAD {
        if !request.headers().contains_key("x-rollout-ui") {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "missing X-Rollout-UI header",
            )
            .into_response();
        }
        if let Err(message) = sign_in::check_origin(request.headers(), &state.config.public_url) {
            return ApiError::new(StatusCode::FORBIDDEN, "cross_origin", message).into_response();
        }
    }
    let record = match cookie(request.headers(), COOKIE) {
        Some(token) => state.store.ui_session_key(&token).await,
        None => Ok(None),
    };
    match record {
        Ok(Some(record)) => {
            request.extensions_mut().insert(Caller {
                project_id: record.project_id,
                key_id: record.id,
                key_name: record.name,
                role: record.role,
                key_project: None,
            });
            next.run(request).await
        }
        Ok(None) if is_api => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in again: the session has ended",
        )
        .into_response(),
        Ok(None) => {
            let here = request
                .uri()
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_string();
            Redirect::to(&format!("/login?next={}", html::url_encode(&here))).into_response()
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// Middleware (after [`require_session`]): the key's rate limit, as on the API; a page
/// gets the 429 as a page, a UI API route as JSON.
async fn limit_session_rate(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some((wait, error)) = limiter.refuse(&request) {
        let mut response = if request.uri().path().starts_with("/ui/") {
            error.into_response()
        } else {
            UiError(error).into_response()
        };
        crate::rate_limit::retry_after(&mut response, wait);
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; rollout_session=xyz; b=2"),
        );
        assert_eq!(cookie(&headers, COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
    }
}
