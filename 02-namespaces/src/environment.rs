//! The environment a container's command starts with: what Docker gives, not the
//! host's whole environment (which would leak host paths and secrets) and not an
//! empty one (which breaks shells).

use labkit::doctor::DEFAULT_PATH;
use labkit::narrate;

// ANCHOR: environment
/// Replace this process's environment with PATH, HOSTNAME, HOME and TERM, then
/// `extra` (`KEY=VALUE`, later ones winning). Call it in the child, after the UTS
/// namespace is set up (HOSTNAME is read there).
pub fn set_container_environment(extra: &[String]) {
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let home = if nix::unistd::geteuid().is_root() {
        "/root"
    } else {
        "/"
    };
    let term = std::env::var("TERM").ok();
    let vars = container_environment(&hostname, home, term, extra);
    let shown: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    narrate::step(
        format!(
            "environ = {{{}}}",
            vars.iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        format!("env -i {}", labkit::narrate::shell_line(&shown)),
    );
    let keys: Vec<_> = std::env::vars_os().map(|(k, _)| k).collect();
    for key in keys {
        // SAFETY: single-threaded (a freshly forked child, about to exec).
        unsafe { std::env::remove_var(key) };
    }
    for (key, value) in vars {
        // SAFETY: as above.
        unsafe { std::env::set_var(key, value) };
    }
}

/// PATH, HOSTNAME, HOME (and TERM, if given), then `extra` over them: what a
/// container's command starts with (an OCI bundle's `process.env` too).
pub fn container_environment(
    hostname: &str,
    home: &str,
    term: Option<String>,
    extra: &[String],
) -> Vec<(String, String)> {
    let mut vars = vec![
        ("PATH".to_string(), DEFAULT_PATH.to_string()),
        ("HOSTNAME".to_string(), hostname.to_string()),
        ("HOME".to_string(), home.to_string()),
    ];
    vars.extend(term.map(|t| ("TERM".to_string(), t)));
    for pair in extra {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        vars.retain(|(k, _)| k != key);
        vars.push((key.to_string(), value.to_string()));
    }
    vars
}
// ANCHOR_END: environment
