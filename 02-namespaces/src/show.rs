//! `ch02-namespaces show [PID]`: the namespaces of a process next to those of
//! another (the host's PID 1 by default), like `lsns`. Same inode, same namespace.

use std::fmt::Write as _;

use crate::namespace::{Namespace, identity};

/// What `show` compares `pid` with: `--against`, else the host's PID 1 when its
/// handles are readable (a sandbox may hide them, even from root), else ourselves.
pub fn reference(against: Option<u32>) -> (String, String) {
    match against {
        Some(other) => (other.to_string(), format!("PID {other}")),
        None if identity("1", Namespace::Uts).is_ok() => ("1".into(), "host (PID 1)".into()),
        None => ("self".into(), format!("ours (PID {})", std::process::id())),
    }
}

// ANCHOR: show
/// The table: one line per namespace type, `*` where the two processes differ.
pub fn table(pid: &str, (other, other_label): (String, String)) -> String {
    let mut out = format!(
        "THIS: PID {pid}, OTHER: {other_label}\n{:<7} {:<16} {:<22} {:<22} {}\n",
        "NS", "CLONE FLAG", "THIS", "OTHER", "ISOLATES"
    );
    let mut differing = 0;
    for ns in Namespace::ALL {
        let show = |p: &str| identity(p, ns).unwrap_or_else(|_| "?".into());
        let (this, that) = (show(pid), show(&other));
        let differs = this != that && this != "?" && that != "?";
        differing += usize::from(differs);
        let mark = if differs { "*" } else { " " };
        let _ = writeln!(
            out,
            "{ns:<7} {:<16} {this:<22} {that:<22} {mark} {}",
            ns.flag_name(),
            ns.isolates()
        );
    }
    let _ = writeln!(out, "{differing} of 8 differ (marked *).");
    out
}
// ANCHOR_END: show
