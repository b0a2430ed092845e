//! API keys.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The body of `POST /v1/keys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ci-nightly", "project": "team-a"}))]
pub struct CreateKey {
    pub name: String,
    /// `admin` or `member` (default).
    pub role: Option<String>,
    /// The key's project (default: the caller's); created if it does not exist.
    pub project: Option<String>,
}

/// `?project=` of the list and revoke endpoints (admins of the admin project only).
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProjectQuery {
    pub project: Option<String>,
}

/// An API key, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Key {
    pub id: String,
    pub project: String,
    pub name: String,
    /// `admin` or `member`.
    pub role: String,
    /// The secret's first characters, to recognise it.
    pub prefix: String,
    pub created_at: String,
}

/// The answer of `POST /v1/keys`: the key and its secret, shown only here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: Key,
    /// The secret to send as `Authorization: Bearer ...`.
    #[serde(rename = "key")]
    pub secret: String,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub project: String,
    pub keys: Vec<Key>,
}
