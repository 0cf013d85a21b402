//! Known ways out of a container, each tried the way an attacker would try it, and
//! each defence shown to hold: a naive runtime fails every one of these tests.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Import, as `image`, a rootfs made by chapter 01's builder (`rootfs ARGS`), once
/// `change` has had its way with it.
fn import_rootfs(
    docker: &Docker,
    image: &str,
    args: &[&std::ffi::OsStr],
    change: impl FnOnce(&Path),
) {
    let dir = open_tempdir();
    let rootfs = dir.path().join("rootfs");
    let built = std::process::Command::new(lab_tests::workspace_bin("ch01-chroot"))
        .args(["rootfs", "-q"])
        .args(args)
        .arg(&rootfs)
        .output()
        .expect("ch01-chroot runs");
    assert!(built.status.success(), "{built:?}");
    change(&rootfs);
    let tar = dir.path().join("image.tar");
    let mut builder = tar::Builder::new(std::fs::File::create(&tar).expect("create"));
    builder.follow_symlinks(false);
    builder.append_dir_all(".", &rootfs).expect("tar");
    builder.finish().expect("finish");
    let out = docker.out(&["import", &tar.to_string_lossy(), image]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

/// An image of busybox plus `probe` (tests/src/bin/probe.rs) with its libraries,
/// imported as `probe`.
fn probe_image(docker: &Docker) {
    let probe = lab_tests::workspace_bin("probe");
    import_rootfs(
        docker,
        "probe",
        &["--add".as_ref(), probe.as_os_str()],
        |_| (),
    );
}

/// The directory of the container's pids cgroup.
fn pids_cgroup(docker: &Docker, name: &str) -> PathBuf {
    cgroups_of(&docker.id(name))
        .into_iter()
        .map(PathBuf::from)
        .find(|d| d.join("pids.max").exists())
        .expect("the pids cgroup")
}

// ANCHOR: defaults
/// Docker's defaults: 14 capabilities in the bounding, permitted and effective sets,
/// none inheritable or ambient; no_new_privs; seccomp; masked and read-only /proc
/// paths; a read-only /sys (and so /sys/fs/cgroup); none of the host's processes.
#[test]
fn security_defaults() {
    needs_root!();
    let docker = Docker::new();
    let (code, text) = docker
        .md()
        .args(["run", "--rm", "--network", "none", "busybox", "sh", "-c"])
        .arg(
            "exec 2>&1; \
             grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; \
             wc -c < /proc/timer_list; \
             wc -c < /proc/interrupts; \
             echo x > /proc/sys/kernel/domainname || echo /proc/sys is read-only; \
             mount -t tmpfs none /tmp || echo mount refused; \
             mkdir /sys/fs/cgroup/x || echo no cgroup made; \
             awk '$5 == \"/sys\" {print \"/sys is mounted\", $6}' /proc/self/mountinfo; \
             ps -o pid,comm",
        )
        .transcript();
    assert_eq!(code, 0, "{text}");
    // Docker's 14: chown dac_override fowner fsetid kill setgid setuid setpcap
    // net_bind_service net_raw sys_chroot mknod audit_write setfcap.
    for set in ["CapPrm", "CapEff", "CapBnd"] {
        assert!(
            text.contains(&format!("{set}:\t00000000a80425fb")),
            "{set}: {text}"
        );
    }
    assert!(text.contains("CapInh:\t0000000000000000"), "{text}");
    assert!(text.contains("CapAmb:\t0000000000000000"), "{text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
    assert!(text.contains("Seccomp:\t2"), "{text}");
    assert!(text.contains("/sys is mounted ro,"), "{text}");
    // /sys/fs/cgroup: an empty read-only tmpfs on v1 and hybrid hosts; on v2, the
    // container's own group, read-only.
    snap_per_lane("security_defaults", &redact(&text));
}
// ANCHOR_END: defaults

/// A user other than root (`-u 1000`): the same bounding set, nothing effective or
/// permitted, as with Docker.
#[test]
fn a_user_other_than_root_has_no_capabilities() {
    needs_root!();
    let docker = Docker::new();
    let user = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-u",
        "1000",
        "busybox",
        "grep",
        "-E",
        "^Cap(Prm|Eff|Bnd)",
        "/proc/self/status",
    ]);
    assert_eq!(
        user.stdout,
        "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n",
        "{}",
        user.stderr
    );
}

// ANCHOR: seccomp
/// The default seccomp profile answers EPERM to what it does not list (the
/// keyring, a user namespace, io_uring as moby's since v25), ENOSYS to clone3;
/// `seccomp=unconfined` lifts it.
#[test]
fn seccomp_blocks_what_docker_blocks_unless_unconfined() {
    needs_root!();
    let docker = Docker::new();
    probe_image(&docker);
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(extra);
        args.extend(["probe", "probe", "syscalls"]);
        docker.md().args(&args).transcript()
    };
    let (code, confined) = run(&[]);
    assert_eq!(code, 0, "{confined}");
    for call in [
        "keyctl",
        "add_key",
        "unshare(CLONE_NEWUSER)",
        "io_uring_setup",
    ] {
        assert!(
            confined
                .lines()
                .any(|l| l.starts_with(call) && l.contains(": EPERM")),
            "{call}: {confined}"
        );
    }
    assert!(confined.contains("clone3(NULL, 0): ENOSYS"), "{confined}");
    assert!(confined.contains("getppid(): allowed"), "{confined}");
    snap("seccomp_default", &confined);
    let (code, unconfined) = run(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(code, 0, "{unconfined}");
    // (io_uring aside: a host may switch it off for everyone, kernel.io_uring_disabled.)
    let refused = |l: &&str| l.contains("EPERM") && !l.starts_with("io_uring");
    assert!(!unconfined.lines().any(|l| refused(&l)), "{unconfined}");
    assert!(
        unconfined.contains("clone3(NULL, 0): EINVAL"),
        "{unconfined}"
    );
    // exec'd processes get the container's profile...
    docker.run_detached("c", &["probe", "sleep", "30"]);
    let out = docker.out(&["exec", "c", "probe", "syscalls"]);
    assert!(
        out.stdout.contains("keyctl(KEYCTL_GET_KEYRING_ID): EPERM"),
        "{}",
        out.stdout
    );
    // ... and its capabilities.
    let out = docker.out(&[
        "exec",
        "c",
        "grep",
        "-E",
        "^Cap(Inh|Prm|Eff|Bnd|Amb)",
        "/proc/self/status",
    ]);
    assert_eq!(
        out.stdout,
        "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n\
         CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n",
        "{}",
        out.stderr
    );
}
// ANCHOR_END: seccomp

// ANCHOR: joining
/// What a process of the container can do to one of the runtime's as it comes in
/// (`exec`, before it has become the command):
/// - CVE-2016-9962: read its memory, environment, descriptors. It is not dumpable
///   until exec: none of that is allowed.
/// - CVE-2019-5736: take hold of its program through `/proc/PID/exe`, wait until
///   nothing runs that file, and write into it: the next root to run mini-docker
///   runs the container's code. The binary here is a fresh copy (as after an
///   upgrade), so that the running container's monitor does not keep it busy
///   ("text file busy"). Not reachable (not dumpable), and read-only if it were.
#[test]
fn a_joining_process_cannot_be_inspected_or_overwritten_from_inside() {
    needs_root!();
    let docker = Docker::new();
    probe_image(&docker);
    let copy_dir = open_tempdir();
    let upgraded = copy_dir.path().join("mini-docker");
    std::fs::copy(BIN, &upgraded).expect("copy");
    let before = std::fs::read(&upgraded).expect("read");
    // The probe watches until the test says stop, through a volume.
    let control = open_tempdir();
    let volume = format!("{}:/control", control.path().display());
    docker.run_detached(
        "c",
        &["-v", &volume, "probe", "probe", "watch", "/control/stop"],
    );
    wait_until("watching", || {
        docker
            .out(&["logs", "c"])
            .stdout
            .contains("watching")
            .then_some(())
    });
    for _ in 0..lab_tests::tries(100) {
        let out = std::process::Command::new("nsenter")
            .arg(format!("--net={}", docker.sandbox.host.path()))
            .arg(&upgraded)
            .args(["exec", "-e", "SECRET=x", "c", "true"])
            .env("MINI_DOCKER_ROOT", docker.root())
            .output()
            .expect("exec");
        assert!(out.status.success(), "{out:?}");
    }
    std::fs::write(control.path().join("stop"), "").expect("stop");
    assert_eq!(docker.out(&["wait", "c"]).stdout, "0\n");
    let report = docker.out(&["logs", "c"]).stdout;
    let seen: u32 = report
        .split("saw ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        seen > 0,
        "no joining process was seen: the test proves nothing: {report}"
    );
    for nothing in [
        "environment 0 times",
        "its descriptors 0 times",
        "wrote into it 0 times",
    ] {
        assert!(report.contains(nothing), "{report}");
    }
    assert!(
        std::fs::read(&upgraded).expect("read") == before,
        "the binary was changed"
    );
}
// ANCHOR_END: joining

// ANCHOR: descriptors
/// Nothing of mini-docker's reaches a container but stdio: not in `run`, not in
/// `exec`, not as a working directory (`-w /proc/self/fd/N` was CVE-2024-21626).
#[test]
fn no_descriptor_leaks_into_a_container() {
    needs_root!();
    let docker = Docker::new();
    // `ls` opens one directory itself (fd 3): anything else would be a leak.
    let fds = "ls /proc/self/fd | tr '\\n' ' '";
    let out = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        fds,
    ]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "0 1 2 3 "),
        "{}",
        out.stderr
    );
    docker.run_detached("c", &["busybox", "sleep", "30"]);
    let out = docker.out(&["exec", "c", "sh", "-c", fds]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "0 1 2 3 "),
        "{}",
        out.stderr
    );
    for n in 3..=20 {
        let dir = format!("/proc/self/fd/{n}");
        let out = docker.out(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-w",
            &dir,
            "busybox",
            "pwd",
        ]);
        assert_ne!(out.code, 0, "-w {dir} worked: {}", out.stdout);
        let out = docker.out(&["exec", "-w", &dir, "c", "pwd"]);
        assert_ne!(out.code, 0, "exec -w {dir} worked: {}", out.stdout);
    }
}
// ANCHOR_END: descriptors

/// An image whose `name` (in the rootfs) is a symlink to `target`: busybox's
/// files, from chapter 01's builder, with that one changed.
fn image_with_symlink(docker: &Docker, image: &str, name: &str, target: &str) {
    import_rootfs(docker, image, &[], |rootfs| {
        let link = rootfs.join(name.trim_start_matches('/'));
        let _ = std::fs::remove_dir_all(&link);
        std::fs::create_dir_all(link.parent().expect("parent")).expect("mkdir");
        std::os::unix::fs::symlink(target, &link).expect("symlink");
    });
}

// ANCHOR: symlinked_targets
/// CVE-2021-30465 and the "/proc is a symlink" family: an image whose /proc, /dev,
/// /sys, or a volume's target is a symlink (absolute, relative, or to `/`) is
/// refused, and the runtime touches nothing on the host.
#[test]
fn mount_targets_that_are_symlinks_are_refused() {
    needs_root!();
    let docker = Docker::new();
    let host = open_tempdir();
    let h = host.path().to_string_lossy().into_owned();
    let cases = [
        ("/proc", "/"),
        ("/proc", h.as_str()),
        ("/dev", "../../../../../.."),
        ("/sys", h.as_str()),
        ("/etc", "/"), // /etc/hosts, /etc/hostname, /etc/resolv.conf are mounted
        ("/data", "/"),
        ("/data", h.as_str()),
        ("/data", "../../.."),
    ];
    let source = open_tempdir();
    let volume = format!("{}:/data/made-by-a-volume", source.path().display());
    for (i, (name, target)) in cases.iter().enumerate() {
        let image = format!("link{i}");
        image_with_symlink(&docker, &image, name, target);
        let network = if *name == "/etc" { "bridge" } else { "none" };
        let out = docker.out(&[
            "run",
            "--rm",
            "--network",
            network,
            "-v",
            &volume,
            &image,
            "true",
        ]);
        assert_eq!(out.code, 125, "{name} -> {target}: {}", out.stderr);
        assert!(
            out.stderr.contains("is a symlink"),
            "{name} -> {target}: {}",
            out.stderr
        );
    }
    assert_eq!(
        lab_tests::ls(host.path()),
        Vec::<String>::new(),
        "made on the host"
    );
    assert!(
        !Path::new("/made-by-a-volume").exists(),
        "made on the host's /"
    );
    // The image's own /dev/null and /dev/console, symlinks to a host file: /dev is
    // a fresh tmpfs over them, and the container writes to its own devices.
    let victim = host.path().join("victim");
    std::fs::write(&victim, "").expect("write");
    for (i, name) in ["/dev/null", "/dev/console"].iter().enumerate() {
        let image = format!("dev{i}");
        image_with_symlink(&docker, &image, name, &victim.to_string_lossy());
        let write = format!("echo pwned > {name}; test -c /dev/null");
        let out = docker.out(&[
            "run",
            "--rm",
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            &write,
        ]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(&victim).expect("read"),
        "",
        "written through"
    );
    assert_eq!(docker.containers(), Vec::<String>::new());
}
// ANCHOR_END: symlinked_targets

// ANCHOR: race
/// The same, racing: while containers start, a directory on the way to a volume's
/// target is swapped, over and over, with a symlink to a host directory
/// (`renameat2(RENAME_EXCHANGE)`, atomic). Every start either refuses, or mounts
/// the volume where it belongs; nothing is ever made or mounted on the host.
#[test]
fn a_symlink_swapped_in_during_start_never_reaches_the_host() {
    needs_root!();
    let docker = Docker::new();
    let (outer, inner, host) = (open_tempdir(), open_tempdir(), open_tempdir());
    std::fs::create_dir(outer.path().join("sub")).expect("mkdir");
    std::os::unix::fs::symlink(host.path(), outer.path().join("swap")).expect("symlink");
    std::fs::write(inner.path().join("marker"), "the volume\n").expect("write");
    let swapper = Swapper::start(outer.path().to_path_buf());
    let (mut mounted, mut refused) = (0, 0);
    for i in 0..lab_tests::tries(40) {
        let name = format!("r{i}");
        let out = docker.out(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            "-v",
            &format!("{}:/data", outer.path().display()),
            "-v",
            &format!("{}:/data/sub/target", inner.path().display()),
            "busybox",
            "sleep",
            "30",
        ]);
        match out.code {
            0 => {
                mounted += 1;
                // Wherever the swapping left it, the mount is on the real directory.
                let look =
                    "cat /data/sub/target/marker 2>/dev/null || cat /data/swap/target/marker";
                let _still = swapper.gate.lock().expect("gate");
                let seen = docker.out(&["exec", &name, "sh", "-c", look]);
                assert_eq!(seen.stdout, "the volume\n", "{}", seen.stderr);
            }
            125 => {
                refused += 1;
                assert!(out.stderr.contains("symlink"), "{}", out.stderr);
            }
            code => panic!("code {code}: {}", out.stderr),
        }
        assert_eq!(docker.out(&["rm", "-f", &name]).code, 0);
        assert_eq!(
            lab_tests::ls(host.path()),
            Vec::<String>::new(),
            "made on the host"
        );
    }
    let swaps = swapper.stop();
    assert!(swaps > 100, "the race hardly ran: {swaps} swaps");
    eprintln!("{mounted} mounted, {refused} refused, {swaps} swaps");
}
// ANCHOR_END: race

/// A thread that swaps `sub` and `swap` in a directory until stopped (also when
/// the test fails: it must not race the temp dir's removal).
struct Swapper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Held for each swap, and by the test while it looks inside a container.
    gate: std::sync::Arc<std::sync::Mutex<()>>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Swapper {
    fn start(dir: PathBuf) -> Swapper {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gate = std::sync::Arc::new(std::sync::Mutex::new(()));
        let (stopping, gated) = (stop.clone(), gate.clone());
        let thread = std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
                let _swapping = gated.lock().unwrap_or_else(|e| e.into_inner());
                let swapped = nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &dir.join("sub"),
                    nix::fcntl::AT_FDCWD,
                    &dir.join("swap"),
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                );
                if swapped.is_err() {
                    break;
                }
                swaps += 1;
            }
            swaps
        });
        Swapper {
            stop,
            gate,
            thread: Some(thread),
        }
    }

    /// Stop, and say how many swaps were made.
    fn stop(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ANCHOR: null
/// CVE-2025-31133: masking binds /dev/null over /proc and /sys files. A volume over
/// /dev whose `null` is a plain file, or a symlink to a file of the host's kernel,
/// would unmask them, or bind that file in their place: refused.
#[test]
fn a_dev_null_that_is_not_the_null_device_is_refused() {
    needs_root!();
    let docker = Docker::new();
    let dev = open_tempdir();
    let null = dev.path().join("null");
    let volume = format!("{}:/dev", dev.path().display());
    for (make, says) in [
        (
            &(|p: &Path| std::fs::write(p, "")) as &dyn Fn(&Path) -> std::io::Result<()>,
            "is not the null device (character 1:3)",
        ),
        (
            &|p: &Path| std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", p),
            "is a symlink",
        ),
    ] {
        let _ = std::fs::remove_file(&null);
        make(&null).expect("make /dev/null");
        let (code, text) = docker
            .md()
            .redact_path(dev.path(), "/tmp/lab-DEV")
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &volume,
                "busybox",
                "true",
            ])
            .transcript();
        assert_eq!(code, 125, "{text}");
        assert!(text.contains(says), "{text}");
    }
    assert_eq!(lab_tests::ls(dev.path()), ["null"]);
    assert_eq!(docker.containers(), Vec::<String>::new());
}
// ANCHOR_END: null

// ANCHOR: devices
/// A disk of the host's for the attack: a loop device over a file of the test's own,
/// so that even with the defence off the container reads nothing of the host's.
struct LoopDisk {
    device: String,
    _file: tempfile::NamedTempFile,
}

impl LoopDisk {
    fn holding(text: &str) -> LoopDisk {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write");
        // A loop device is as long as its file's whole 512-byte sectors.
        file.as_file().set_len(1 << 20).expect("grow");
        let out = std::process::Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file.path())
            .output()
            .expect("losetup (util-linux)");
        assert!(out.status.success(), "losetup: {out:?}");
        let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
        LoopDisk {
            device,
            _file: file,
        }
    }

    /// Its major and minor numbers.
    fn number(&self) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let rdev = std::fs::metadata(&self.device)
            .expect("the loop device")
            .rdev();
        (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev))
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.device])
            .status();
    }
}

/// Root in a container keeps CAP_MKNOD, as in Docker: it makes a node for a disk of
/// the host's and reads it. The device allow-list lets the node be made and refuses
/// the open; /dev/null still works.
#[test]
fn a_host_disk_made_with_mknod_cannot_be_opened() {
    needs_root!();
    let docker = Docker::new();
    let disk = LoopDisk::holding("the host's secret");
    let (major, minor) = disk.number();
    let attack = format!(
        "mknod /tmp/disk b {major} {minor} && echo disk made; head -c 17 /tmp/disk; echo; \
         echo x > /dev/null && echo null written"
    );
    let out = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        &attack,
    ]);
    assert!(
        !out.stdout.contains("secret"),
        "read the host's disk:\n{}",
        out.stdout
    );
    for line in ["disk made", "null written"] {
        assert!(
            out.stdout.contains(line),
            "{line}?\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    assert!(
        out.stderr.contains("/tmp/disk: Operation not permitted"),
        "{}",
        out.stderr
    );
}
// ANCHOR_END: devices

/// `--device HOST:CONTAINER:PERMISSIONS` makes the node in the container and allows
/// just that: here reading, not writing.
#[test]
fn a_device_given_with_device_is_there_as_allowed() {
    needs_root!();
    let docker = Docker::new();
    let disk = LoopDisk::holding("given to the container");
    let device = format!("{}:/dev/xvda:r", disk.device);
    let script = "stat -c '%F %t:%T %a' /dev/xvda; head -c 22 /dev/xvda; echo; \
                  echo x > /dev/xvda || echo refused";
    let out = docker.out(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device",
        &device,
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The host's node: its numbers and its mode.
    let (major, minor) = disk.number();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&disk.device).expect("stat").permissions(),
    ) & 0o7777;
    let node = format!("block special file {major:x}:{minor:x} {mode:o}");
    assert_eq!(
        out.stdout,
        format!("{node}\ngiven to the container\nrefused\n")
    );
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{}",
        out.stderr
    );
}

/// A UDP socket bound at `at` in the test's network namespace (the "host").
fn udp_on_the_host(docker: &Docker, at: &'static str) -> std::net::UdpSocket {
    docker
        .sandbox
        .host
        .on_thread(move || std::net::UdpSocket::bind(at).expect("bind"))
        .join()
        .expect("the socket")
}

/// The probe's last datagram, "done": it came the same way as the attack, after it.
fn wait_for_done(done: &std::net::UdpSocket) {
    done.set_read_timeout(Some(lab_tests::PATIENCE))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let (n, _) = done.recv_from(&mut buf).expect("the probe's done datagram");
    assert_eq!(&buf[..n], b"done");
}

// ANCHOR: localnet
/// CVE-2020-8558: publishing on 127.0.0.1 needs `route_localnet` on the bridge, which
/// also lets the host accept packets to 127.0.0.0/8 that come *from* the bridge. A
/// container forges one (a packet socket: CAP_NET_RAW is in Docker's default set) to
/// a service of the host's that listens on loopback only. Here the "host" is the
/// test's own network namespace; its loopback service, a UDP socket.
#[test]
fn a_container_cannot_reach_the_hosts_loopback() {
    needs_root!();
    let docker = Docker::new();
    probe_image(&docker);
    let service = udp_on_the_host(&docker, "127.0.0.1:7070");
    let done = udp_on_the_host(&docker, "0.0.0.0:7071");
    let out = docker.out(&["run", "--rm", "probe", "probe", "localnet", "7070", "7071"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    wait_for_done(&done);
    let mut buf = [0u8; 64];
    service.set_nonblocking(true).expect("nonblocking");
    let reached = service
        .recv_from(&mut buf)
        .map(|(n, from)| (buf[..n].to_vec(), from));
    assert!(
        reached.is_err(),
        "the host's loopback service got {reached:?}"
    );
    assert_eq!(docker.out(&["network", "rm", "lab0"]).code, 0);
}
// ANCHOR_END: localnet

// ANCHOR: ra
/// CVE-2020-13401: a container (CAP_NET_RAW) advertises itself as an IPv6 router on
/// the bridge; a host that accepts router advertisements there would route its IPv6
/// traffic through it. The "host" is the test's network namespace.
#[test]
fn a_container_cannot_become_the_hosts_ipv6_router() {
    needs_root!();
    let docker = Docker::new();
    probe_image(&docker);
    let done = udp_on_the_host(&docker, "0.0.0.0:7072");
    let out = docker.out(&["run", "--rm", "probe", "probe", "ra", "7072"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    wait_for_done(&done);
    let routes = docker.sandbox.host.sh("ip -6 route show default");
    assert_eq!(routes, "", "the host took the container for a router");
    assert_eq!(docker.out(&["network", "rm", "lab0"]).code, 0);
}
// ANCHOR_END: ra

// ANCHOR: store
/// CVE-2021-41091: a store other local users may walk. A container leaves a setuid
/// copy of its shell in its writable layer and a secret in its log; a local user
/// (nobody) then tries the store's paths. The test's temp dir is opened up to all,
/// so that only the store's own permissions stand in the way.
#[test]
fn the_store_is_root_only() {
    needs_root!();
    use std::os::unix::fs::PermissionsExt;
    let docker = Docker::new();
    let store = docker.root();
    // A store as an older mini-docker left it, open to all: made root-only on use.
    std::fs::create_dir_all(&store).expect("mkdir");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let script = "echo the secret; cp /bin/busybox /tmp/sush; chmod 4755 /tmp/sush";
    let out = docker.out(&[
        "run",
        "--name",
        "c",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mode = std::fs::metadata(&store)
        .expect("the store")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(store.parent().expect("its temp dir"), open).expect("chmod");
    let container = store.join("containers").join(docker.id("c"));
    let log = container.join("json.log");
    let setuid = container.join("upper/tmp/sush");
    assert!(std::fs::read_to_string(&log).is_ok_and(|l| l.contains("the secret")));
    assert!(std::fs::metadata(&setuid).is_ok_and(|m| m.permissions().mode() & 0o4000 != 0));
    let tries = format!(
        "ls {store} && echo listed; cat {log} && echo read; test -x {setuid} && echo runnable",
        store = store.display(),
        log = log.display(),
        setuid = setuid.display()
    );
    let out = Learner::new("sh")
        .as_uid(65534)
        .args(["-c", &tries])
        .output();
    for reached in ["listed", "read", "runnable", "secret"] {
        assert!(
            !out.stdout.contains(reached),
            "nobody {reached}:\n{}",
            out.stdout
        );
    }
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
    // Its log is root's alone even inside the store.
    let mode = std::fs::metadata(&log)
        .expect("json.log")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
// ANCHOR_END: store

// ANCHOR: still
/// CVE-2018-15664: `commit` and `export` walk a running container's files on the
/// host. Inside, `probe swap` exchanges, for ever, a directory of a hundred files
/// and a symlink to a directory of the host's (a path that exists only on the host):
/// a walk by path that meets the directory, then opens a file beneath it, may go
/// through the symlink. The container is frozen for the walk: nothing of the host's
/// gets into the tarball or the image.
#[test]
fn commit_and_export_never_read_the_host_through_a_swapped_symlink() {
    needs_root!();
    let docker = Docker::new();
    probe_image(&docker);
    let host = open_tempdir();
    for i in 0..100 {
        std::fs::write(host.path().join(format!("f{i}")), "the host's secret").expect("write");
    }
    let setup = format!(
        "mkdir -p /x/d && for i in $(seq 0 99); do echo inside > /x/d/f$i; done && \
         ln -s {} /x/l && cd /x && exec probe swap d l",
        host.path().display()
    );
    docker.run_detached("swapper", &["probe", "sh", "-c", &setup]);
    wait_until("the container to swap", || {
        let logs = docker.out(&["logs", "swapper"]).stdout;
        logs.contains("swapping").then_some(())
    });
    let out_dir = open_tempdir();
    for i in 0..lab_tests::tries(10) {
        let tar = out_dir.path().join(format!("{i}.tar"));
        let out = docker.out(&["export", "-o", &tar.to_string_lossy(), "swapper"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let bytes = std::fs::read(&tar).expect("the tarball");
        let leaked = bytes.windows(17).any(|w| w == b"the host's secret");
        assert!(!leaked, "export {i} holds a file of the host's");
        let out = docker.out(&["commit", "swapper", &format!("still{i}")]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let out = std::process::Command::new("grep")
        .args(["-rl", "the host's secret"])
        .arg(docker.root().join("layers"))
        .output()
        .expect("grep");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "a committed layer holds it"
    );
    assert_eq!(docker.out(&["rm", "-f", "swapper"]).code, 0);
}
// ANCHOR_END: still

// ANCHOR: init
/// `--init`'s PID 1 is the runtime's own code, forked and never exec'd: unless it
/// lets go, it keeps the environment the admin started `mini-docker` with and the
/// runtime's descriptors, and container root reads them through /proc/1
/// (CVE-2016-9962's class, for the container's whole life).
#[test]
fn the_init_holds_nothing_of_the_runtime() {
    needs_root!();
    let docker = Docker::new();
    let look = "tr '\\0' '\\n' < /proc/1/environ; ls -l /proc/1/fd/; echo looked";
    let out = docker
        .md()
        .env("ADMIN_TOKEN", "hunter2")
        .args([
            "run",
            "--rm",
            "--init",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            look,
        ])
        .output();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.ends_with("looked\n"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("hunter2"),
        "the admin's environment:\n{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("->"),
        "the runtime's descriptors:\n{}",
        out.stdout
    );
}
// ANCHOR_END: init

// ANCHOR: terminal
/// `exec -i` without `-t`: the command starts a process that stays behind and reads
/// its stdin. Had it been given the admin's terminal itself, it would read what the
/// admin types after `exec` has returned (a password, say). It gets a pipe of the
/// runtime's, which ends when `exec` does: it reads nothing.
#[test]
fn a_process_left_behind_by_exec_never_reads_the_admins_terminal() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached("c", &["busybox", "sleep", "600"]);
    let mut terminal = Terminal::new(None);
    // (A shell gives a job in the background /dev/null as stdin: keep it as fd 3.)
    let stay = "exec 3<&0; (cat <&3 > /tmp/typed; echo done > /tmp/done) & echo left";
    let mut command = docker.command(&["exec", "-i", "c", "sh", "-c", stay]);
    terminal.attach(&mut command);
    let status = command.status().expect("exec");
    assert_eq!(status.code(), Some(0));
    terminal.wait_for("", "left");
    // The admin goes on typing at that terminal; then Ctrl-D ends its input.
    terminal.type_keys("my password\n\x04");
    wait_until("the process left behind to read its end", || {
        let out = docker.out(&["exec", "c", "cat", "/tmp/done"]);
        (out.code == 0).then_some(())
    });
    let typed = docker.out(&["exec", "c", "cat", "/tmp/typed"]).stdout;
    assert_eq!(typed, "", "it read the admin's terminal");
}

/// `run -i` with a file of the admin's as input: a container given that
/// descriptor itself can reopen it through `/proc/self/fd/0`, for writing too, and
/// overwrite the file on the host. Given a pipe, it only writes into the pipe.
#[test]
fn run_i_never_hands_the_admins_input_file_to_the_container() {
    needs_root!();
    let docker = Docker::new();
    let dir = open_tempdir();
    let answers = dir.path().join("answers");
    std::fs::write(&answers, "the admin's answers\n").expect("write");
    let overwrite = "echo pwned > /proc/self/fd/0; cat";
    let out = docker
        .command(&[
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
        ])
        .arg(overwrite)
        .stdin(std::fs::File::open(&answers).expect("open"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&answers).expect("read"),
        "the admin's answers\n",
        "the container wrote to the admin's file"
    );
}
// ANCHOR_END: terminal

/// A container reference is a name or an id, never a path: `rm -f` of a reference
/// made of `..` (64 characters long, as an id is) must not remove a directory
/// outside the store.
#[test]
fn a_container_reference_is_never_a_path() {
    needs_root!();
    let docker = Docker::new();
    // From ROOT/containers up to the test's temp dir, then a victim's name, 64 in all.
    let victim = format!("victim-{}", "v".repeat(64 - "../../victim-".len()));
    let reference = format!("../../{victim}");
    assert_eq!(reference.len(), 64);
    let outside = docker.root().parent().expect("the temp dir").join(&victim);
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("precious"), "keep me").expect("write");
    assert_eq!(docker.out(&["ps"]).code, 0); // the store exists
    for verb in [&["rm", "-f"][..], &["inspect"], &["stop"], &["logs"]] {
        let mut args = verb.to_vec();
        args.push(&reference);
        let out = docker.out(&args);
        assert_ne!(out.code, 0, "{args:?}");
        assert!(out.stderr.contains("No such container"), "{}", out.stderr);
    }
    assert!(
        outside.join("precious").exists(),
        "rm -f removed a directory outside the store"
    );
}

/// `cp` into a container writes where the container says: a FIFO there would hang
/// the admin's `cp` for ever, and a device node there (made with mknod, a loop "disk"
/// of the test's own here) would be written by the admin's process, which no device
/// cgroup restrains. Both are refused; the disk is unchanged.
#[test]
fn cp_into_a_container_refuses_fifos_and_devices() {
    needs_root!();
    let docker = Docker::new();
    let disk = LoopDisk::holding("the disk as it was");
    let (major, minor) = disk.number();
    let setup = format!("mkfifo /tmp/fifo && mknod /tmp/disk b {major} {minor} && sleep 600");
    docker.run_detached("c", &["busybox", "sh", "-c", &setup]);
    wait_until("the fifo and the node", || {
        let out = docker.out(&["exec", "c", "ls", "/tmp/disk", "/tmp/fifo"]);
        (out.code == 0).then_some(())
    });
    let host = open_tempdir();
    let file = host.path().join("payload");
    std::fs::write(&file, "overwritten by cp").expect("write");
    for target in ["c:/tmp/disk", "c:/tmp/fifo"] {
        let mut cp = docker.command(&["cp", &file.to_string_lossy(), target]);
        let mut child = cp.stderr(std::process::Stdio::piped()).spawn().expect("cp");
        // Waited for as long as the suite's patience; a cp still hanging then is ended.
        let deadline = std::time::Instant::now() + lab_tests::PATIENCE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("cp to {target} hung");
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(child.stderr.as_mut().expect("piped"), &mut stderr)
            .expect("read");
        assert!(!status.success(), "cp to {target} succeeded");
        assert!(stderr.contains("not a regular file"), "{stderr}");
    }
    let now = std::fs::read(&disk.device).expect("the disk");
    assert!(
        now.starts_with(b"the disk as it was"),
        "cp wrote to the device"
    );
}

// ANCHOR: pids
/// A fork bomb stops at the default pids limit (2048, where Docker has none);
/// the host is not affected, and `rm -f` takes it all down.
#[test]
fn a_fork_bomb_stops_at_the_default_pids_limit() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached(
        "bomb",
        &["busybox", "sh", "-c", "f() { f | f & }; f; sleep 60"],
    );
    let inspect = docker.out(&["inspect", "bomb"]).stdout;
    assert!(inspect.contains("\"PidsLimit\": 2048"), "{inspect}");
    let pids_dir = pids_cgroup(&docker, "bomb");
    assert_eq!(
        std::fs::read_to_string(pids_dir.join("pids.max")).expect("pids.max"),
        "2048\n"
    );
    wait_until("the bomb to hit the limit", || {
        let events = std::fs::read_to_string(pids_dir.join("pids.events")).ok()?;
        (events.trim() != "max 0").then_some(())
    });
    let current: u64 = std::fs::read_to_string(pids_dir.join("pids.current"))
        .expect("pids.current")
        .trim()
        .parse()
        .expect("number");
    assert!(current <= 2048, "{current} processes");
    let id = docker.id("bomb");
    assert_eq!(docker.out(&["rm", "-f", "bomb"]).code, 0);
    assert!(cgroups_of(&id).is_empty(), "cgroups left");
}
// ANCHOR_END: pids

/// Look from the host: the defences of a running container, in /proc and its cgroup.
#[test]
fn the_defences_seen_from_the_host() {
    needs_root!();
    let docker = Docker::new();
    docker.run_detached("web", &["busybox", "sleep", "60"]);
    let inspect = docker.out(&["inspect", "web"]).stdout;
    let number = |key: &str| -> String {
        inspect
            .split(&format!("\"{key}\": "))
            .nth(1)
            .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
            .expect(key)
            .to_string()
    };
    let (pid, monitor) = (number("Pid"), number("MonitorPid"));
    let pids = pids_cgroup(&docker, "web");
    let id = docker.id("web");
    let commands: [Vec<String>; 3] = [
        vec![
            "grep".into(),
            "-E".into(),
            "^(Cap(Inh|Eff|Bnd|Amb)|NoNewPrivs|Seccomp)".into(),
            format!("/proc/{pid}/status"),
        ],
        vec!["readlink".into(), format!("/proc/{monitor}/exe")],
        vec!["cat".into(), pids.join("pids.max").display().to_string()],
    ];
    let mut shown = String::new();
    for words in commands {
        let (code, text) = Learner::new(&words[0])
            .args(&words[1..])
            .redact_path(&id, "[ID]")
            .redact_path(format!("/proc/{pid}/"), "/proc/[PID]/")
            .redact_path(format!("/proc/{monitor}/"), "/proc/[MONITOR]/")
            .transcript();
        assert_eq!(code, 0, "{text}");
        shown.push_str(&text);
    }
    // The monitor runs from a mount attached nowhere: its path is just "/".
    assert!(shown.contains("\n/\n"), "{shown}");
    snap_per_lane("security_from_the_host", &shown);
}
