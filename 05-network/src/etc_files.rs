//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf`: a container's name and how
//! it finds other hosts. Like Docker, we write them per container, outside the
//! rootfs, and bind-mount them over the rootfs's own (chapter 02's `Bind`), so the
//! image stays untouched and each container gets its own.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ch02_namespaces::plan::Bind;
use labkit::narrate;
use labkit::{Failure, Result};

/// The three files, in a directory of their own, removed when the container ends.
#[derive(Debug)]
pub struct EtcFiles {
    dir: PathBuf,
}

impl Drop for EtcFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// What goes into them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub hostname: String,
    pub hosts: String,
    pub resolv_conf: String,
}

// ANCHOR: hosts
/// `/etc/hosts`: the loopback names, and the container's own name and address.
pub fn hosts(hostname: &str, address: Option<Ipv4Addr>) -> String {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(address) = address {
        text.push_str(&format!("{address}\t{hostname}\n"));
    }
    text
}
// ANCHOR_END: hosts

// ANCHOR: resolv
/// The host's `/etc/resolv.conf`, less the nameservers on 127.0.0.0/8 (such as
/// systemd-resolved's 127.0.0.53): inside the container, 127.0.0.53 is the
/// container's own loopback, where nothing answers. Docker does the same, and
/// falls back to public resolvers when nothing is left.
pub fn resolv_conf(host: &str) -> String {
    let mut kept = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let server = line.strip_prefix("nameserver").map(str::trim);
        match server.map(|s| s.parse::<Ipv4Addr>()) {
            Some(Ok(ip)) if ip.is_loopback() => continue,
            Some(_) => servers += 1,
            None => {}
        }
        kept.push_str(line);
        kept.push('\n');
    }
    if servers == 0 {
        kept.push_str("# no usable nameserver on the host: Docker's fallback\n");
        kept.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    kept
}
// ANCHOR_END: resolv

impl EtcFiles {
    /// Write them into `dir` (bridge mode keeps them next to the lease, so that a
    /// lease taken back takes its files too), or into a new temp dir.
    pub fn write(contents: &Contents, dir: Option<PathBuf>) -> Result<EtcFiles> {
        let failed = |e: std::io::Error| Failure::new(format!("writing /etc files: {e}"));
        let dir = match dir {
            Some(dir) => fs::create_dir_all(&dir).map(|()| dir).map_err(failed)?,
            None => tempfile::Builder::new()
                .prefix("ch05-")
                .tempdir()
                .map_err(failed)?
                .keep(),
        };
        let files = EtcFiles { dir };
        for (name, text) in [
            ("hostname", format!("{}\n", contents.hostname)),
            ("hosts", contents.hosts.clone()),
            ("resolv.conf", contents.resolv_conf.clone()),
        ] {
            fs::write(files.dir.join(name), text).map_err(failed)?;
        }
        narrate::note(format!(
            "/etc/hostname, /etc/hosts, /etc/resolv.conf written to {}, to be bound into the container",
            files.dir.display()
        ));
        Ok(files)
    }

    pub fn binds(&self) -> Vec<Bind> {
        ["hostname", "hosts", "resolv.conf"]
            .iter()
            .map(|name| Bind {
                source: self.dir.join(name),
                target: Path::new("/etc").join(name),
                read_only: false,
            })
            .collect()
    }
}

/// Read `etc/NAME` under `root` (a host path, or `/proc/PID/root`).
pub fn read_etc(root: &Path, name: &str) -> String {
    fs::read_to_string(root.join("etc").join(name)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_nameservers_are_dropped() {
        let host = "# from the host\nnameserver 127.0.0.53\noptions edns0\n";
        let out = resolv_conf(host);
        assert!(!out.contains("127.0.0.53"));
        assert!(out.contains("options edns0"));
        assert!(out.contains("nameserver 8.8.8.8"));
        let out = resolv_conf("nameserver 192.0.2.53\n");
        assert_eq!(out, "nameserver 192.0.2.53\n");
    }

    #[test]
    fn hosts_names_the_container() {
        let text = hosts("web", Some(Ipv4Addr::new(10, 77, 0, 2)));
        assert!(text.ends_with("10.77.0.2\tweb\n"));
        assert!(!hosts("web", None).contains("web"));
    }
}
