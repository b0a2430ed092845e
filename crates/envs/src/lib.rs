#![doc = include_str!("../README.md")]

mod error;
mod inbox;
mod my_assistant;

pub use error::EnvsError;
pub use inbox::inbox;
pub use my_assistant::my_assistant;

use rollout_mcp::sdk::Environment;

/// The names of the bundled environments, for `rollout example-env <name>`.
pub const NAMES: &[&str] = &[my_assistant::NAME, inbox::NAME];

/// The bundled environment called `name`, if there is one.
pub fn by_name(name: &str) -> Option<Environment> {
    match name {
        my_assistant::NAME => Some(my_assistant()),
        inbox::NAME => Some(inbox()),
        _ => None,
    }
}

/// Serves the bundled environment `name` over stdio until the client closes the session.
pub async fn serve_stdio_by_name(name: &str) -> Result<(), EnvsError> {
    let environment = by_name(name).ok_or_else(|| EnvsError::UnknownEnvironment {
        name: name.to_owned(),
        known: NAMES.join(", "),
    })?;
    environment.serve_stdio().await?;
    Ok(())
}
