//! The UI's stylesheet and scripts, compiled into the binary and served as static files
//! from `/assets/NAME`, so that the Content-Security-Policy can allow `'self'` only: no
//! inline script, no inline event handler, no inline style (see `crate::headers`).
//! They need no session (the sign-in page uses the stylesheet) and hold no data.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// `(file name, content type, content)` of every asset.
const ASSETS: [(&str, &str, &str); 7] = [
    (
        "ui.css",
        "text/css; charset=utf-8",
        include_str!("assets/ui.css"),
    ),
    (
        "scenario.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/scenario.js"),
    ),
    (
        "live.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/live.js"),
    ),
    (
        "refresh.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/refresh.js"),
    ),
    (
        "train.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/train.js"),
    ),
    (
        "evaluate.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/evaluate.js"),
    ),
    (
        "review.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/review.js"),
    ),
];

/// `GET /assets/{name}`.
pub(crate) async fn get(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, content)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                // Not versioned in the URL: revalidate, so an upgrade shows at once.
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            *content,
        )
            .into_response(),
        None => {
            crate::ApiError::not_found("not_found", format!("no asset '{name}'")).into_response()
        }
    }
}
