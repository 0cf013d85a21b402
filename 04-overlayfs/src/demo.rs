//! `ch04-overlayfs demo`: the classic two-layer example, narrated, in a temp dir and
//! a mount namespace of its own (nothing can be left mounted).

use std::path::Path;

use labkit::{Failure, Result};

use crate::changes::{diff, is_opaque, is_whiteout};
use crate::overlay::Overlay;

fn put(path: &Path, text: &str) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(path))
        .map_err(|e| Failure::new(e.to_string()))?;
    std::fs::write(path, text).map_err(|e| Failure::new(format!("{}: {e}", path.display())))
}

fn show(what: &str, path: &Path) {
    let text = std::fs::read_to_string(path)
        .map(|t| format!("{:?}", t.trim_end()))
        .unwrap_or_else(|_| "(none)".into());
    println!("  {what:<34} {text}");
}

// ANCHOR: demo
pub fn demo() -> Result<i32> {
    let tmp = tempfile::Builder::new()
        .prefix("ch04-demo-")
        .tempdir()
        .map_err(|e| Failure::new(e.to_string()))?;
    let (lower, upper, work, merged) = (
        tmp.path().join("lower"),
        tmp.path().join("upper"),
        tmp.path().join("work"),
        tmp.path().join("merged"),
    );
    put(&lower.join("etc/motd"), "hello from the lower layer\n")?;
    put(&lower.join("etc/hosts"), "127.0.0.1 localhost\n")?;
    put(&lower.join("bin/old-tool"), "#!/bin/sh\n")?;
    put(&lower.join("var/cache/stale"), "old cache\n")?;
    put(&upper.join("etc/motd"), "hello from the upper layer\n")?;
    std::fs::create_dir_all(&merged).map_err(|e| Failure::new(e.to_string()))?;
    Overlay::new(std::slice::from_ref(&lower), &upper, &work, &merged)?
        .mount_privately("the demo's mount lives only here")?;

    println!("1. Shadowing: the upper layer's file hides the lower one's");
    show("merged/etc/motd:", &merged.join("etc/motd"));

    println!("2. Copy-up: the first write copies the file into the upper layer");
    let hosts = merged.join("etc/hosts");
    let more = format!(
        "{}10.0.0.2 db\n",
        std::fs::read_to_string(&hosts).unwrap_or_default()
    );
    std::fs::write(&hosts, more).map_err(|e| Failure::new(e.to_string()))?;
    show("merged/etc/hosts:", &hosts);
    show("upper/etc/hosts (the copy):", &upper.join("etc/hosts"));
    show("lower/etc/hosts (untouched):", &lower.join("etc/hosts"));

    println!("3. Delete: a whiteout (a 0/0 character device) in the upper hides the lower file");
    std::fs::remove_file(merged.join("bin/old-tool")).map_err(|e| Failure::new(e.to_string()))?;
    let wh = std::fs::symlink_metadata(upper.join("bin/old-tool")).is_ok_and(|m| is_whiteout(&m));
    println!(
        "  {:<34} {}",
        "merged/bin/old-tool:",
        if merged.join("bin/old-tool").exists() {
            "still there"
        } else {
            "gone"
        }
    );
    println!(
        "  {:<34} {}",
        "upper/bin/old-tool:",
        if wh { "a whiteout, c 0 0" } else { "?" }
    );

    println!("4. A new file goes to the upper layer only");
    put(&merged.join("notes.txt"), "written in the container\n")?;
    show("upper/notes.txt:", &upper.join("notes.txt"));

    println!("5. Replacing a directory makes it opaque: nothing below shows through");
    std::fs::remove_dir_all(merged.join("var/cache")).map_err(|e| Failure::new(e.to_string()))?;
    std::fs::create_dir(merged.join("var/cache")).map_err(|e| Failure::new(e.to_string()))?;
    println!(
        "  {:<34} {}",
        "upper/var/cache opaque:",
        if is_opaque(&upper.join("var/cache")) {
            "yes (trusted.overlay.opaque=y)"
        } else {
            "no"
        }
    );

    println!("The upper layer now holds (ch04-overlayfs diff):");
    for change in diff(&upper, std::slice::from_ref(&lower)) {
        println!("  {change}");
    }
    // Unmount before the temp dir goes: a mount point cannot be removed.
    crate::overlay::umount(&merged)?;
    Ok(0)
}
// ANCHOR_END: demo
