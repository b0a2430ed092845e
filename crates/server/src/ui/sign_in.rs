//! Sign-in and sign-out: `GET/POST /login`, `POST /logout`.
//!
//! `POST /login` checks, in order: that the form comes from this site (`Origin`, else
//! `Sec-Fetch-Site`: another site cannot sign a browser in with the attacker's key), that
//! the client address has not failed too often (a token bucket per address: each failed
//! sign-in takes a token; once empty, every sign-in from the address is 429 until it
//! refills), then the key. After sign-in the browser goes to `next`, which must be a path
//! of this site ([`safe_next`]).

use super::{COOKIE, SESSION_TTL_MS, UiError, cookie, html};
use crate::state::AppState;
use axum::Form;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// Failed sign-ins, counted per client address.
pub(crate) struct SignInThrottle(pub(crate) crate::rate_limit::RateLimiter);

/// Where a browser goes after sign-in when `next` is missing or refused.
const HOME: &str = "/environments";

/// Query of the sign-in page.
#[derive(Debug, Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    key: String,
    next: Option<String>,
}

/// The sign-in page.
#[derive(askama::Template)]
#[template(path = "sign_in.html")]
struct SignIn<'a> {
    next: &'a str,
    message: Option<&'a str>,
}

fn login_form(next: &str, message: Option<&str>) -> Response {
    html::render(&SignIn { next, message }).into_response()
}

/// `GET /login`.
pub(super) async fn page(Query(query): Query<LoginQuery>) -> Response {
    login_form(&safe_next(query.next.as_deref()), None)
}

/// Only a path of this site: `/` then anything but a second `/` or `\`, and no control
/// character, whitespace, backslash or non-ASCII anywhere. Browsers drop tabs and newlines
/// from URLs and read `\` as `/`, so `/\t/evil.example` or `/\evil.example` would
/// otherwise leave the site.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next[1..].starts_with(['/', '\\'])
                && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            next.to_string()
        }
        _ => HOME.into(),
    }
}

/// Refuses a form posted by another site: its `Origin` must be this server's (the `Host`
/// the browser addressed, or the public URL's), or, without `Origin`, `Sec-Fetch-Site`
/// must say the request is same-origin or typed by the user. Clients that send neither
/// (curl, scripts) are not browsers a third party can drive, and pass.
pub(crate) fn check_origin(headers: &HeaderMap, public_url: &str) -> Result<(), String> {
    let text = |name: header::HeaderName| {
        headers.get(name).map(|value| {
            value
                .to_str()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    };
    if let Some(origin) = text(header::ORIGIN) {
        let authority = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let host = text(header::HOST);
        let public = public_url
            .trim_end_matches('/')
            .to_ascii_lowercase()
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or_default().to_string());
        return match authority {
            Some(authority) if Some(authority) == host.as_deref() => Ok(()),
            Some(authority) if Some(authority) == public.as_deref() => Ok(()),
            _ => Err(format!(
                "a form of another site ({origin}) cannot post here"
            )),
        };
    }
    match text(HeaderName::from_static("sec-fetch-site")).as_deref() {
        None | Some("same-origin" | "none") => Ok(()),
        Some(site) => Err(format!("a {site} form cannot post here")),
    }
}

/// 403 for a cross-site form.
fn cross_site(message: String) -> Response {
    let error = crate::ApiError::new(StatusCode::FORBIDDEN, "cross_origin", message);
    UiError::from(error).into_response()
}

/// The client's address: the peer of the connection (a proxy in front counts as one
/// client); `unknown` when the router is not served over TCP (in-process tests).
fn client_address(connect_info: Option<&axum::Extension<ConnectInfo<SocketAddr>>>) -> String {
    connect_info.map_or_else(|| "unknown".into(), |info| info.0.0.ip().to_string())
}

/// `POST /login`.
pub(super) async fn login(
    State(state): State<AppState>,
    axum::Extension(throttle): axum::Extension<Arc<SignInThrottle>>,
    connect_info: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if let Err(message) = check_origin(&headers, &state.config.public_url) {
        tracing::warn!(%message, "cross-site sign-in refused");
        return cross_site(format!("sign-in refused: {message}"));
    }
    let next = safe_next(form.next.as_deref());
    let address = client_address(connect_info.as_ref());
    if let Err(wait) = throttle.0.check(&address, Instant::now()) {
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            login_form(
                &next,
                Some(&format!(
                    "Too many failed sign-ins from this address; try again in {wait} s."
                )),
            ),
        )
            .into_response();
        crate::rate_limit::retry_after(&mut response, wait);
        return response;
    }
    let key = form.key.trim();
    let record = match state.store.verify_api_key(key).await {
        Ok(record) => record,
        Err(error) => return UiError::from(error).into_response(),
    };
    let Some(record) = record else {
        let _ = throttle.0.take(&address, Instant::now());
        tracing::warn!(client = %address, "failed sign-in");
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

/// `POST /logout`.
pub(super) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(message) = check_origin(&headers, &state.config.public_url) {
        return cross_site(format!("sign-out refused: {message}"));
    }
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
    fn templates_escape_what_they_print() {
        let page = askama::Template::render(&SignIn {
            next: "/x\"><script>alert('x')</script>&",
            message: Some("<b>no</b>"),
        })
        .unwrap();
        assert!(
            page.contains(
                "value=\"/x&#34;&#62;&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;&#38;\""
            ),
            "{page}"
        );
        assert!(page.contains("&#60;b&#62;no&#60;/b&#62;"), "{page}");
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
    }

    #[test]
    fn sign_in_redirects_stay_on_the_site() {
        assert_eq!(safe_next(Some("/traces?x=1")), "/traces?x=1");
        assert_eq!(safe_next(Some("/traces/a%20b")), "/traces/a%20b");
        for attack in [
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "/x\\..\\..\\/evil.example",
            "https://evil.example",
            "\t//evil.example",
            "evil.example",
            "/\u{0}x",
            "/é",
            "",
        ] {
            assert_eq!(safe_next(Some(attack)), HOME, "{attack:?}");
        }
        assert_eq!(safe_next(None), HOME);
    }

    #[test]
    fn only_this_sites_forms_may_post() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, HeaderValue::from_static(value));
            }
            map
        };
        let public = "https://rollout.example.com";
        let same = headers(&[
            ("host", "127.0.0.1:8300"),
            ("origin", "http://127.0.0.1:8300"),
        ]);
        assert!(check_origin(&same, public).is_ok());
        let proxied = headers(&[
            ("host", "backend:8300"),
            ("origin", "https://rollout.example.com"),
        ]);
        assert!(check_origin(&proxied, public).is_ok());
        assert!(check_origin(&headers(&[]), public).is_ok(), "curl");
        assert!(check_origin(&headers(&[("sec-fetch-site", "same-origin")]), public).is_ok());
        for refused in [
            headers(&[
                ("host", "127.0.0.1:8300"),
                ("origin", "https://evil.example"),
            ]),
            headers(&[("host", "127.0.0.1:8300"), ("origin", "null")]),
            headers(&[
                ("host", "127.0.0.1:8300"),
                ("origin", "http://127.0.0.1:8300.evil.example"),
            ]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
        ] {
            assert!(check_origin(&refused, public).is_err(), "{refused:?}");
        }
    }
}
