//! `ch03-cgroups info`: which cgroup version(s) this host runs, where each
//! controller is, and where this process sits.

use std::fmt::Write as _;

use labkit::doctor::Host;

use crate::hierarchy::{CONTROLLERS, Layout};

// ANCHOR: info
pub fn info(host: &Host) -> String {
    let layout = Layout::discover(host);
    let mut out = String::new();
    let Some(mode) = layout.mode() else {
        return "no cgroup filesystem is mounted (see: ch03-cgroups doctor)\n".into();
    };
    let _ = writeln!(out, "mode:       {mode}");
    if let Some(v2) = &layout.v2 {
        let own = layout.v2_controllers(host);
        let listed = if own.is_empty() {
            "none of its own".to_string()
        } else {
            own.join(" ")
        };
        let _ = writeln!(out, "v2 tree:    {} (controllers: {listed})", v2.display());
    }
    let _ = writeln!(out, "\ncontroller  version  where");
    for controller in CONTROLLERS {
        let (version, place) = match layout.version_of(controller, host) {
            Some(1) => ("v1", layout.v1[controller].display().to_string()),
            Some(_) => {
                let how = match controller {
                    "cpuacct" => " (cpu.stat in every group)",
                    "freezer" => " (cgroup.freeze in every group)",
                    "devices" => " (a BPF program attached to a group)",
                    _ => "",
                };
                (
                    "v2",
                    format!(
                        "{}{how}",
                        layout
                            .v2
                            .as_ref()
                            .map(|p| p.display().to_string())
                            .unwrap_or_default()
                    ),
                )
            }
            None => ("-", "missing: limits that need it are refused".to_string()),
        };
        let _ = writeln!(out, "{controller:<11} {version:<8} {place}");
    }
    let _ = writeln!(out, "\nthis process (/proc/self/cgroup):");
    if let Some(path) = layout.own.get("") {
        let _ = writeln!(out, "  v2:       {path}");
    }
    for controller in CONTROLLERS.iter().filter(|c| layout.v1.contains_key(**c)) {
        let _ = writeln!(
            out,
            "  {:<9} {}",
            format!("{controller}:"),
            layout.own.get(*controller).map_or("/", String::as_str)
        );
    }
    out
}
// ANCHOR_END: info
