//! Which devices a group's processes may use: an allow-list of rules, everything
//! else refused. The rules read as v1's `devices.allow` writes them (`c 1:3 rwm`:
//! a character device, major 1, minor 3, read, write and mknod).
//!
//! Root in a container keeps `CAP_MKNOD` (Docker keeps it), so it can make a node
//! for any device, the host's disks included. What stops it is this list: the kernel
//! asks the device controller at every `open(2)` and `mknod(2)` of a device node,
//! whoever made the node. v1 has files for it (`devices.deny`, `devices.allow`); v2
//! has no files, only a small BPF program attached to the group
//! ([`device_filter`](crate::device_filter)).

use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

/// One allow rule: `kind` is `a` (all), `b` (block) or `c` (character); `None` for a
/// number is `*` (any); `access` is some of `r`, `w`, `m` (mknod).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: String,
}

// ANCHOR: defaults
/// Docker's default list: any device node may be made (`m`), and only these opened
/// (`rw`): null, zero, full, random, urandom, tty, console, ptmx and the terminals
/// of the container's own devpts (`/dev/pts/*`, major 136).
pub fn docker_defaults() -> Vec<DeviceRule> {
    let rule = |text: &str| DeviceRule::parse(text).expect("a sound built-in rule");
    [
        "c *:* m",
        "b *:* m", // mknod of anything: the open is what is checked
        "c 1:3 rwm",
        "c 1:5 rwm",
        "c 1:7 rwm", // null, zero, full
        "c 1:8 rwm",
        "c 1:9 rwm", // random, urandom
        "c 5:0 rwm",
        "c 5:1 rwm",
        "c 5:2 rwm",   // tty, console, ptmx
        "c 136:* rwm", // /dev/pts/N
    ]
    .into_iter()
    .map(rule)
    .collect()
}
// ANCHOR_END: defaults

impl DeviceRule {
    /// `c 1:3 rwm`, `b *:* m`, `a` (as Docker's `--device-cgroup-rule`).
    pub fn parse(text: &str) -> Result<DeviceRule> {
        let bad = |why: &str| {
            Failure::new(format!(
                "device rule {text:?}: {why} (the form is TYPE MAJOR:MINOR ACCESS, \
                 e.g. 'c 1:3 rwm' or 'b 8:* r'; TYPE is a, b or c; ACCESS some of r, w, m)"
            ))
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let kind = match words.first().copied() {
            Some("a") => 'a',
            Some("b") => 'b',
            Some("c") => 'c',
            _ => return Err(bad("the type must be a, b or c")),
        };
        if kind == 'a' && words.len() == 1 {
            return Ok(DeviceRule {
                kind,
                major: None,
                minor: None,
                access: "rwm".into(),
            });
        }
        let [_, numbers, access] = words[..] else {
            return Err(bad("three words expected"));
        };
        let number = |n: &str| match n {
            "*" => Ok(None),
            _ => n.parse::<u32>().map(Some).map_err(|_| bad("not a number")),
        };
        let (major, minor) = numbers
            .split_once(':')
            .ok_or_else(|| bad("MAJOR:MINOR expected"))?;
        let valid =
            !access.is_empty() && access.chars().all(|c| "rwm".contains(c)) && access.len() <= 3;
        if !valid {
            return Err(bad("ACCESS is some of r, w and m"));
        }
        Ok(DeviceRule {
            kind,
            major: number(major)?,
            minor: number(minor)?,
            access: ["r", "w", "m"]
                .into_iter()
                .filter(|c| access.contains(c))
                .collect(),
        })
    }

    /// The line v1's `devices.allow` takes.
    pub fn to_v1(&self) -> String {
        let number = |n: Option<u32>| n.map_or("*".to_string(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            number(self.major),
            number(self.minor),
            self.access
        )
    }

    /// Whether this rule lets `access` (one of r, w, m) through to a device of
    /// `kind` (b or c) `major:minor`: what the kernel asks, answered in Rust.
    pub fn allows(&self, kind: char, major: u32, minor: u32, access: char) -> bool {
        (self.kind == 'a' || self.kind == kind)
            && self.major.is_none_or(|m| m == major)
            && self.minor.is_none_or(|m| m == minor)
            && self.access.contains(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_and_write_as_v1_has_them() {
        for text in ["c 1:3 rwm", "b *:* m", "c 136:* rw", "a *:* rwm"] {
            assert_eq!(DeviceRule::parse(text).unwrap().to_v1(), text);
        }
        assert_eq!(DeviceRule::parse("a").unwrap().to_v1(), "a *:* rwm");
        assert_eq!(DeviceRule::parse("c 1:3 mwr").unwrap().access, "rwm");
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        for (text, why) in [
            ("x 1:3 r", "the type must be"),
            ("c 1:3", "three words"),
            ("c 1-3 r", "MAJOR:MINOR"),
            ("c a:3 r", "not a number"),
            ("c 1:3 rx", "ACCESS"),
            ("c 1:3 ", "three words"),
        ] {
            let e = DeviceRule::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn dockers_defaults_open_null_but_not_a_disk() {
        let rules = docker_defaults();
        let allowed = |k, ma, mi, a| rules.iter().any(|r| r.allows(k, ma, mi, a));
        assert!(allowed('c', 1, 3, 'w'), "/dev/null");
        assert!(allowed('c', 136, 7, 'r'), "/dev/pts/7");
        assert!(allowed('b', 8, 0, 'm'), "mknod of sda");
        assert!(!allowed('b', 8, 0, 'r'), "reading sda");
        assert!(!allowed('c', 1, 1, 'r'), "/dev/mem");
        assert!(!allowed('c', 10, 232, 'w'), "/dev/kvm");
    }
}
