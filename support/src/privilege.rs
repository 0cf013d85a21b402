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
    Err(Failure::new(format!(
        "this needs root: {why}. Run it again as root: sudo {}",
        shell_line(&again)
    )))
}
