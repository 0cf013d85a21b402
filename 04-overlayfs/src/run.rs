//! `ch04-overlayfs run --lower L[:L...] [--upper DIR] -- CMD`: a container whose root
//! is an overlay: read-only lowers, one writable layer.
//!
//! The overlay is mounted in a mount namespace of our own, made before anything
//! else: it exists only there, and the kernel unmounts it when the namespace ends,
//! even if this process is killed. The container (chapter 02) then gets a copy of
//! that namespace and pivots into the merged directory.

use std::path::PathBuf;

use ch02_namespaces::plan::Plan;
use ch02_namespaces::spawn;
use labkit::narrate;
use labkit::{Failure, Result};

use crate::overlay::Overlay;

// ANCHOR: run
/// `plan.rootfs` is ignored: the root is the overlay of `lowers` + `upper`.
pub fn run(lowers: &[PathBuf], upper: Option<PathBuf>, plan: Plan) -> Result<i32> {
    // A fresh writable layer in a temp dir (discarded after), or the one given (kept).
    let scratch = tempfile::Builder::new()
        .prefix("ch04-")
        .tempdir()
        .map_err(|e| Failure::new(e.to_string()))?;
    let upper_dir = upper
        .clone()
        .unwrap_or_else(|| scratch.path().join("upper"));
    // The work dir must share the upper's filesystem: put it next to the upper.
    let work = match &upper {
        Some(u) => u.with_file_name(format!(
            "{}.work",
            u.file_name().unwrap_or_default().to_string_lossy()
        )),
        None => scratch.path().join("work"),
    };
    let merged = scratch.path().join("merged");
    std::fs::create_dir(&merged).map_err(|e| Failure::new(e.to_string()))?;
    let overlay = Overlay::new(lowers, &upper_dir, &work, &merged)?;

    overlay.mount_privately("the overlay will live only here")?;
    let plan = Plan {
        rootfs: Some(overlay.merged.clone()),
        ..plan
    };
    let code = spawn::run(&plan);
    // Unmount before the temp dir goes: a mount point cannot be removed.
    crate::overlay::umount(&overlay.merged)?;
    match &upper {
        Some(u) => narrate::note(format!(
            "the writable layer is kept: {} (see: ch04-overlayfs diff {0})",
            u.display()
        )),
        None => narrate::note("the writable layer was a temp dir: discarded"),
    }
    code
}
// ANCHOR_END: run
