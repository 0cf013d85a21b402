//! `labkit`: the few things every chapter of the container lab shares.
//!
//! - [`narrate`]: print each kernel-facing step, with the shell command that does
//!   the same, as it happens (`-q` silences it).
//! - [`failure`]: errors a learner can act on, each with its exit code.
//! - [`doctor`]: checks of the host, each saying what was found and how to fix it.
//! - [`privilege`]: are we root?

pub mod doctor;
pub mod failure;
pub mod lock;
pub mod narrate;
pub mod privilege;

pub use failure::{Failure, Result};
