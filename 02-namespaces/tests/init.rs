//! PID 1 must reap orphans: a plain program as PID 1 leaves zombies, --init does not.

mod common;

use common::*;

/// Children of `pid` that are zombies (state Z).
fn zombies_of(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|rest| rest.trim_start().starts_with('Z'))
            })
        })
        .collect()
}

/// The subshell starts `sleep 0.3` and exits at once: the sleep is orphaned and
/// re-parented to PID 1, which then has to wait for it.
const ORPHAN: &str = "(sleep 0.3 &); exec sleep 30";

#[test]
fn a_plain_pid_1_leaves_the_orphan_a_zombie() {
    needs_root!();
    // PID 1 becomes `sleep 30`, which never calls wait().
    let container = Background::start(
        &["run", "--pid", "--", "/bin/sh", "-c", ORPHAN],
        None,
        "sleep",
    );
    let zombie = wait_until("the orphan to become a zombie", || {
        zombies_of(container.pid).first().copied()
    });
    assert_ne!(zombie, container.pid);
}

#[test]
fn init_reaps_the_orphan() {
    needs_root!();
    let container = Background::start(
        &["run", "--init", "--", "/bin/sh", "-c", ORPHAN],
        None,
        "ch02-namespaces",
    );
    let init = container.pid;
    // First the orphan shows up as a child of init (besides the command)...
    wait_until("the orphan to be re-parented to init", || {
        (children(init).len() == 2).then_some(())
    });
    // ...then it ends, and init reaps it: no zombie, only the command is left.
    wait_until("init to reap the orphan", || {
        (children(init).len() == 1 && zombies_of(init).is_empty()).then_some(())
    });
    assert_eq!(comm(children(init)[0]), "sleep");
}
