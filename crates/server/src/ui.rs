//! The web UI: server-rendered HTML pages with small inline scripts (no build step, no CDN).
//!
//! Sign-in takes an API key and starts a session: the browser gets an HttpOnly cookie with
//! a random token, the store keeps only the token's SHA-256 (`ui_sessions`). Every page
//! needs a session. The pages reach the API through two cookie-authenticated routes,
//! `POST /ui/run` (the card's Run button; it needs the `X-Rollout-UI` header, which a
//! cross-site form cannot send) and `GET /ui/traces/{id}/events` (the live view); the job
//! and checkpoint pages post `POST /ui/datasets`, `/ui/training` and `/ui/jobs` the same way.

mod environments;
mod html;
mod jobs;
mod traces;
mod training;
mod usage;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Form;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

/// The session cookie's name.
const COOKIE: &str = "rollout_session";
/// How long a session lasts.
const SESSION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// The pages, sign-in and sign-out, and the UI's cookie-authenticated API routes.
pub(crate) fn router(state: AppState) -> Router<AppState> {
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
        .route_layer(from_fn_with_state(state, require_session));
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
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

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let body = format!(
            "<section class=\"card\"><h1>{}</h1><p>{}</p><p><a href=\"/environments\">Back to environments</a></p></section>",
            self.0.status.as_u16(),
            html::esc(&self.0.message)
        );
        (self.0.status, html::layout("Error", "", &body)).into_response()
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
    if is_api
        && request.method() == axum::http::Method::POST
        && !request.headers().contains_key("x-rollout-ui")
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "missing X-Rollout-UI header",
        )
        .into_response();
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
                role: record.role,
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

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
struct LoginForm {
    key: String,
    next: Option<String>,
}

fn login_form(next: &str, message: Option<&str>) -> Html<String> {
    let error = message
        .map(|m| {
            format!(
                "<p class=\"error-text\" role=\"alert\">{}</p>",
                html::esc(m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        r#"<section class="card login">
<h1>Sign in</h1>
<p class="muted">Paste an API key. The key is checked once; the browser keeps only a session cookie.</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" placeholder="ro_..." required autofocus>
<button type="submit" id="sign-in">Sign in</button>
</form>
</section>"#,
        next = html::esc(next)
    );
    html::layout_bare("Sign in", &body)
}

async fn login_page(Query(query): Query<LoginQuery>) -> Html<String> {
    login_form(query.next.as_deref().unwrap_or("/environments"), None)
}

/// Only same-site paths, so that sign-in cannot redirect elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next) if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') => {
            next.to_string()
        }
        _ => "/environments".into(),
    }
}

async fn login(State(state): State<AppState>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    let key = form.key.trim();
    let record = match state.store.verify_api_key(key).await {
        Ok(record) => record,
        Err(error) => return UiError::from(error).into_response(),
    };
    let Some(record) = record else {
        return (
            StatusCode::UNAUTHORIZED,
            login_form(&next, Some("That API key is not valid.")),
        )
            .into_response();
    };
    let token = match state
        .store
        .create_ui_session(&record.id, SESSION_TTL_MS)
        .await
    {
        Ok(token) => token,
        Err(error) => return UiError::from(error).into_response(),
    };
    let secure = if state.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        SESSION_TTL_MS / 1000
    );
    let mut response = Redirect::to(&next).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, COOKIE)
        && let Err(error) = state.store.delete_ui_session(&token).await
    {
        return UiError::from(error).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn sign_in_redirects_stay_on_the_site() {
        assert_eq!(safe_next(Some("/traces?x=1")), "/traces?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/environments");
        assert_eq!(safe_next(Some("https://evil.example")), "/environments");
        assert_eq!(safe_next(None), "/environments");
    }
}
