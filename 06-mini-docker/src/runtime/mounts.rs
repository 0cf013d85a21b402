//! An OCI bundle's `mounts` as mount(2) takes them: each option either a flag
//! (`ro`, `nosuid`, `rbind`...), a propagation (`rprivate`, `slave`...), or text
//! for the filesystem itself (`mode=755`, `size=65536k`), as runc sorts them.

use ch02_namespaces::plan::Mount;
use labkit::{Failure, Result};
use nix::mount::MsFlags;

/// How each option sets (or clears) a flag: (option, clear it?, flag).
const FLAGS: [(&str, bool, MsFlags); 23] = [
    ("ro", false, MsFlags::MS_RDONLY),
    ("rw", true, MsFlags::MS_RDONLY),
    ("nosuid", false, MsFlags::MS_NOSUID),
    ("suid", true, MsFlags::MS_NOSUID),
    ("nodev", false, MsFlags::MS_NODEV),
    ("dev", true, MsFlags::MS_NODEV),
    ("noexec", false, MsFlags::MS_NOEXEC),
    ("exec", true, MsFlags::MS_NOEXEC),
    ("sync", false, MsFlags::MS_SYNCHRONOUS),
    ("async", true, MsFlags::MS_SYNCHRONOUS),
    ("dirsync", false, MsFlags::MS_DIRSYNC),
    ("mand", false, MsFlags::MS_MANDLOCK),
    ("nomand", true, MsFlags::MS_MANDLOCK),
    ("noatime", false, MsFlags::MS_NOATIME),
    ("atime", true, MsFlags::MS_NOATIME),
    ("nodiratime", false, MsFlags::MS_NODIRATIME),
    ("diratime", true, MsFlags::MS_NODIRATIME),
    ("relatime", false, MsFlags::MS_RELATIME),
    ("norelatime", true, MsFlags::MS_RELATIME),
    ("strictatime", false, MsFlags::MS_STRICTATIME),
    ("nostrictatime", true, MsFlags::MS_STRICTATIME),
    ("bind", false, MsFlags::MS_BIND),
    ("rbind", false, MsFlags::MS_BIND.union(MsFlags::MS_REC)),
];

/// The propagation options.
const PROPAGATION: [(&str, MsFlags); 8] = [
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// A propagation option (`rootfsPropagation` takes the same words).
pub fn propagation(word: &str) -> Option<MsFlags> {
    PROPAGATION
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, f)| *f)
}

// ANCHOR: translate
/// `mounts[i]` of config.json as chapter 02 mounts it. `cgroup_v2`: whether the
/// host's `/sys/fs/cgroup` is cgroup v2 (a `cgroup` mount then means cgroup2).
pub fn translate(i: usize, m: &oci_spec::runtime::Mount, cgroup_v2: bool) -> Result<Mount> {
    let field = format!("mounts[{i}]");
    let target = m.destination().to_string_lossy().to_string();
    if !target.starts_with('/') {
        return Err(Failure::new(format!(
            "{field}.destination {target:?}: must be an absolute path in the container"
        )));
    }
    // ANCHOR: options
    let (mut flags, mut spread, mut data) = (MsFlags::empty(), MsFlags::empty(), vec![]);
    for option in m.options().iter().flatten() {
        let option = option.as_str();
        if let Some((_, clear, flag)) = FLAGS.iter().find(|(o, _, _)| *o == option) {
            match clear {
                true => flags.remove(*flag),
                false => flags.insert(*flag),
            }
        } else if let Some(p) = propagation(option) {
            spread = p;
        } else if matches!(option, "tmpcopyup" | "idmap" | "ridmap" | "remount") {
            return Err(Failure::new(format!(
                "{field}.options: {option:?} is not supported by mini-runc"
            )));
        } else {
            data.push(option.to_string());
        }
    }
    // ANCHOR_END: options
    let typ = m.typ().clone().unwrap_or_default();
    let source = m.source().as_ref().map(|s| s.to_string_lossy().to_string());
    let bind = flags.contains(MsFlags::MS_BIND) || typ == "bind";
    let fstype = match typ.as_str() {
        _ if bind => None,
        "" => {
            return Err(Failure::new(format!(
                "{field} ({target}): a type is needed unless the options say bind or rbind"
            )));
        }
        // cgroup v1 hierarchies are not shown to a container: an empty, read-only tmpfs
        // stands there instead (runc mounts the container's own groups; not done here).
        "cgroup" if !cgroup_v2 => {
            flags |= MsFlags::MS_RDONLY;
            Some("tmpfs".to_string())
        }
        "cgroup" => Some("cgroup2".to_string()),
        other => Some(other.to_string()),
    };
    if bind {
        flags |= MsFlags::MS_BIND;
    }
    let source = match (source, bind) {
        (Some(s), true) if !s.starts_with('/') => {
            return Err(Failure::new(format!(
                "{field}.source {s:?}: a bind mount's source must be an absolute path on the host"
            )));
        }
        (Some(s), _) => s,
        (None, true) => {
            return Err(Failure::new(format!(
                "{field} ({target}): a bind mount needs a source"
            )));
        }
        (None, false) => fstype.clone().unwrap_or_default(),
    };
    Ok(Mount {
        source,
        target,
        fstype,
        flags,
        data: (!data.is_empty()).then(|| data.join(",")),
        propagation: spread,
    })
}
// ANCHOR_END: translate

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::MountBuilder;

    fn mount(typ: &str, source: &str, options: &[&str]) -> oci_spec::runtime::Mount {
        MountBuilder::default()
            .destination("/x")
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .unwrap()
    }

    #[test]
    fn flags_propagation_and_data_are_sorted_apart() {
        let m = translate(
            0,
            &mount(
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"],
            ),
            true,
        )
        .unwrap();
        assert_eq!(m.fstype.as_deref(), Some("tmpfs"));
        assert_eq!(m.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(m.data.as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(m.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
    }

    #[test]
    fn later_options_win_and_bind_needs_no_type() {
        let m = translate(
            1,
            &mount("", "/etc/hosts", &["rbind", "ro", "rw", "nodev"]),
            true,
        )
        .unwrap();
        assert_eq!(m.fstype, None);
        assert_eq!(
            m.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NODEV
        );
        let m = translate(1, &mount("bind", "/etc", &[]), true).unwrap();
        assert_eq!(m.flags, MsFlags::MS_BIND);
    }

    #[test]
    fn cgroup_is_cgroup2_on_v2_and_an_empty_tmpfs_otherwise() {
        let v2 = translate(0, &mount("cgroup", "cgroup", &["ro"]), true).unwrap();
        assert_eq!(v2.fstype.as_deref(), Some("cgroup2"));
        let v1 = translate(0, &mount("cgroup", "cgroup", &[]), false).unwrap();
        assert_eq!(v1.fstype.as_deref(), Some("tmpfs"));
        assert!(v1.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bad_mounts_name_their_field() {
        let relative = translate(3, &mount("", "etc", &["bind"]), true).unwrap_err();
        assert!(
            relative.message().starts_with("mounts[3].source \"etc\""),
            "{relative}"
        );
        let untyped = translate(2, &mount("", "x", &[]), true).unwrap_err();
        assert!(
            untyped.message().starts_with("mounts[2] (/x): a type"),
            "{untyped}"
        );
        let idmap = translate(1, &mount("bind", "/x", &["idmap"]), true).unwrap_err();
        assert!(
            idmap.message().contains("mounts[1].options: \"idmap\""),
            "{idmap}"
        );
    }
}
