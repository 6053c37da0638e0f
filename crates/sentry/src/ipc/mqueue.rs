//! POSIX message queues.

/// The sandbox's message queues by name.
#[derive(Default)]
pub struct Registry {}
