//! API-key authentication: `Authorization: Bearer <key>` on everything but health.
//! Keys are looked up by their SHA-256; the key itself is never stored or logged.

use crate::error::ApiError;
use crate::routes::keys::ADMIN_PROJECT;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use rollout_store::{KeyRole, ProjectSettings, VerifiedKey};

/// Who is calling: the project every object of the request belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) project_id: String,
    pub(crate) key_id: String,
    /// The key's name: the author of what the caller records on traces, unless it names a
    /// reviewer.
    pub(crate) key_name: String,
    pub(crate) role: KeyRole,
    /// The settings and environment generation of a project, read with the caller's key
    /// (its project's): a run request needs them, and reading them with the key saves it a
    /// round trip. Kept with the project they belong to, so that a caller moved to another
    /// project (an operator acting in it) never uses them there; see
    /// [`Caller::known_settings`].
    pub(crate) key_project: Option<KeyProject>,
}

/// What was read of a project with a key.
#[derive(Debug, Clone)]
pub(crate) struct KeyProject {
    pub(crate) project_id: String,
    pub(crate) settings: ProjectSettings,
    pub(crate) env_generation: Option<i64>,
}

impl Caller {
    /// What was read of the caller's project with its key, if it was.
    fn known_project(&self) -> Option<&KeyProject> {
        self.key_project
            .as_ref()
            .filter(|known| known.project_id == self.project_id)
    }

    /// The settings of the caller's project, when they were read with its key.
    pub(crate) fn known_settings(&self) -> Option<&ProjectSettings> {
        self.known_project().map(|known| &known.settings)
    }

    /// The environment generation of the caller's project, when it was read with its key
    /// (before anything the request reads of the project's versions).
    pub(crate) fn known_env_generation(&self) -> Option<i64> {
        self.known_project().and_then(|known| known.env_generation)
    }

    /// True for the server's operators: the admin keys of the admin project (`default`).
    pub(crate) fn is_operator(&self) -> bool {
        self.role == KeyRole::Admin && self.project_id == ADMIN_PROJECT
    }

    /// Refuses callers that are not operators (403). Operator actions make the server run
    /// a program of the caller's choosing outside any bundle (a `command` environment, a
    /// git deploy) or reach an address of the caller's choosing (a `url` environment):
    /// a project's admins may not, or a project would reach past its boundary.
    pub(crate) fn require_operator(&self, action: &str) -> Result<(), ApiError> {
        if self.is_operator() {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{action} is an operator action: it needs an admin key of the \
                 '{ADMIN_PROJECT}' project (a project's admins may deploy bundles: \
                 POST /v1/environments/NAME/deploy)"
            ),
        ))
    }

    /// Refuses callers without the admin role (403).
    pub(crate) fn require_admin(&self, action: &str) -> Result<(), ApiError> {
        match self.role {
            KeyRole::Admin => Ok(()),
            KeyRole::Member => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("{action} needs an admin API key"),
            )),
        }
    }
}

/// Middleware: rejects requests without a valid key, else adds `Caller` to the request.
pub(crate) async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let unauthorized =
        |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing API key: send 'Authorization: Bearer <key>'"))?;
    let value = header
        .to_str()
        .map_err(|_| unauthorized("the Authorization header is not valid text"))?;
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        // hud-python's `connect_url(url, headers={"Authorization": "Bearer KEY"})` (as its
        // docs show) sends "Bearer Bearer KEY": fastmcp adds the scheme again.
        .map(|key| key.strip_prefix("Bearer ").map_or(key, str::trim))
        .filter(|key| !key.is_empty())
        .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <key>'"))?;
    let VerifiedKey {
        key: record,
        settings,
        env_generation,
    } = state
        .store
        .verify_api_key_and_settings(key)
        .await?
        .ok_or_else(|| unauthorized("invalid API key"))?;
    request.extensions_mut().insert(Caller {
        key_project: Some(KeyProject {
            project_id: record.project_id.clone(),
            settings,
            env_generation,
        }),
        project_id: record.project_id,
        key_id: record.id,
        key_name: record.name,
        role: record.role,
    });
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings and the environment generation read with a key are its project's: a caller
    /// moved to another project (an operator acting in it) has none known there, and reads
    /// that project's.
    #[test]
    fn what_is_read_with_a_key_is_only_its_projects() {
        let settings = ProjectSettings {
            default_max_steps: Some(3),
            ..ProjectSettings::default()
        };
        let caller = Caller {
            project_id: "default".into(),
            key_id: "key-1".into(),
            key_name: "ci".into(),
            role: KeyRole::Admin,
            key_project: Some(KeyProject {
                project_id: "default".into(),
                settings: settings.clone(),
                env_generation: Some(4),
            }),
        };
        assert_eq!(caller.known_settings(), Some(&settings));
        assert_eq!(caller.known_env_generation(), Some(4));
        let elsewhere = Caller {
            project_id: "team-b".into(),
            ..caller
        };
        assert_eq!(elsewhere.known_settings(), None);
        assert_eq!(elsewhere.known_env_generation(), None);
    }
}
