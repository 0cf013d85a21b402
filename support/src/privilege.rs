//! Are we root? Most chapters need it: chroot, namespaces other than the user
//! namespace, cgroups, mounts and network devices all ask for capabilities.

use crate::Failure;
use crate::narrate::shell_line;

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Fail with the exact command to type again when we are not root.
/// `why` names the capability the kernel will ask for, e.g.
/// `chroot(2) needs CAP_SYS_CHROOT`.
pub fn require_root(why: &str) -> crate::Result<()> {
    if is_root() {
        return Ok(());
    }
    // The command line exactly as it was typed, so that it can be pasted back.
    let again: Vec<String> = std::env::args().collect();
    // Typed as a bare name (from ~/.cargo/bin, say): sudo looks for it in its own
    // secure_path only, where `cargo lab install` puts the chapters' programs.
    let program = again.first().map(String::as_str).unwrap_or_default();
    let install = match !program.contains('/')
        && !std::path::Path::new("/usr/local/bin")
            .join(program)
            .exists()
    {
        true => {
            " (if sudo does not find it: `cargo lab install`, in the repository, puts \
                  every chapter's program in /usr/local/bin)"
        }
        false => "",
    };
    Err(Failure::new(format!(
        "this needs root: {why}. Run it again as root: sudo {}{install}",
        shell_line(&again)
    )))
}
