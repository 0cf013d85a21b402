//! Chapter 04: overlayfs and image layers.
//!
//! - [`overlay`]: the union mount, its four directories and its checks;
//! - [`changes`]: whiteouts, opaque directories, and `diff`;
//! - [`pack`], [`unpack`]: OCI layer tarballs, to and from overlay's format;
//! - [`tree`]: walking a tree by descriptors, never by path;
//! - [`run`]: a container whose root is an overlay (chapter 02's isolation);
//! - [`demo`]: the classic two-layer example; [`doctor`].

pub mod changes;
pub mod demo;
pub mod doctor;
pub mod overlay;
pub mod pack;
pub mod run;
pub mod tree;
pub mod unpack;
