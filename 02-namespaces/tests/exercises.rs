//! The features behind chapter 02's extra exercises (book: "Exercises"). Each is
//! part of the product and tested here; `cargo lab start 02 N` cuts it out for a
//! learner to write again, and `cargo lab check 02 N` runs these tests.

mod common;

use common::*;

fn run(args: &[&str]) -> lab_tests::Outcome {
    Learner::new(BIN).args(["-q", "run"]).args(args).output()
}

#[test]
fn domainname() {
    needs_root!();
    let host = std::fs::read_to_string("/proc/sys/kernel/domainname").expect("domainname");
    let out = run(&[
        "--domainname",
        "lab.example",
        "--",
        "cat",
        "/proc/sys/kernel/domainname",
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "lab.example\n"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").expect("domainname"),
        host,
        "the host's is unchanged"
    );
}
