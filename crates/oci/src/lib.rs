//! The OCI runtime: container state under `--root`, the lifecycle commands (create, start,
//! state, kill, delete, exec, ps, pause, resume, ...), the control protocol with the sandbox
//! process, and config.json turned into a sandbox. `runsc`'s clap commands are thin wrappers
//! around [`commands`].

pub mod commands;
pub mod container_hooks;
pub mod control;
pub mod hooks;
pub mod resources;
pub mod sandbox;
pub mod spec;
pub mod state;
pub mod sysctl;

/// Failures of the runtime commands; the message is what Docker shows the user.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    State(String),
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    #[error("{0}")]
    Sandbox(String),
    #[error("{0}")]
    Hook(String),
}

impl OciError {
    pub fn io(what: impl Into<String>, error: std::io::Error) -> OciError {
        OciError::Io {
            what: what.into(),
            error,
        }
    }

    pub fn boot(e: boot::BootError) -> OciError {
        OciError::Sandbox(e.to_string())
    }
}
