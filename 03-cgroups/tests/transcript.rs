//! The run the book shows: alone in its test binary (cargo runs test binaries one
//! after the other), so that the `/ch03-cgroups` it shows made and removed is not
//! another test's.

mod common;

use common::*;

#[test]
fn memory_the_oom_killer_ends_it_at_the_limit() {
    needs_root!();
    let name = unique("oom");
    let (code, text) = ch03()
        .args([
            "run", "--memory", "32m", "--name", &name, "--", BIN, "stress", "memory", "128m",
        ])
        .redact_path(&name, "oom")
        .transcript();
    assert_eq!(code, 137, "{text}");
    assert!(text.contains("OOM-killed:    yes"), "{text}");
    assert!(!text.contains("all 128 MiB touched"), "{text}");
    assert!(leftovers(&name).is_empty(), "{:?}", leftovers(&name));
    snap_per_lane("run-memory-oom", &redact_numbers(&text));
}
