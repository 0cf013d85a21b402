//! `cargo lab vm [OPTIONS] -- CMD...`: run a command of this workspace in a VM booted
//! with pure cgroup v2, the way most learners' laptops run (systemd, cgroup v2 only).
//!
//! The VM is virtme-ng (from PyPI) on qemu, booting Debian's own kernel package
//! (`linux-image-amd64`, unpacked into a cache, never installed) with
//! `cgroup_no_v1=all`. The guest sees the host's root read-only, the workspace
//! read-write at the same path (what it builds or snapshots stays), and writable
//! copies of `/etc` and `/var` with an empty `/tmp` on a scratch disk thrown away
//! afterwards. KVM is used when a probe boot shows it works; otherwise qemu emulates
//! (TCG: a 2-CPU guest boots in about 20 s; build on the host first).
//!
//! In the guest, this same program (`lab vm-guest RUN`) lays the cgroup tree out as
//! systemd does (controllers enabled from the root down, the command in a session
//! scope under `user.slice`), or leaves the root bare (`--bare`: no controllers
//! enabled, the command in the root group, as a v2 host without systemd), then runs
//! the command with the caller's environment and reports its exit code.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// virtme-ng's version on PyPI (its command line is what this file speaks).
const VIRTME_NG: &str = "1.42";
/// Where the systemd-like layout puts the command, as `sudo` in an ssh session.
pub const SESSION_SCOPE: &str = "/user.slice/user-0.slice/session-1.scope";
const CONTROLLERS: &str = "cpuset cpu io memory pids";
const SCRATCH_LABEL: &str = "labvm-scratch";

/// What one `cargo lab vm` run asks for.
#[derive(Debug, Clone)]
pub struct Vm {
    /// The workspace: the command runs there, and it is shared read-write.
    pub dir: PathBuf,
    /// The command's cgroup, with controllers enabled down to it (systemd's
    /// layout); `None`: the bare root, no controllers enabled.
    pub cgroup: Option<String>,
    pub cpus: usize,
    pub memory_mib: u64,
    /// Stop the VM after this long (exit 124).
    pub timeout: Option<Duration>,
    /// More host paths shared read-write at the same place.
    pub shares: Vec<PathBuf>,
}

type Fallible<T> = Result<T, String>;

/// The cache: `/var/cache/lab-vm` (the kernel, virtme-ng, the KVM probe).
pub fn cache() -> PathBuf {
    std::env::var_os("LAB_VM_CACHE")
        .map_or_else(|| PathBuf::from("/var/cache/lab-vm"), PathBuf::from)
}

fn run_quiet(cmd: &mut Command) -> Fallible<String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn say(text: &str) {
    eprintln!("lab vm: {text}");
}

// ---------------------------------------------------------------- setup

/// Install what the host lacks, and cache virtme-ng and the kernel. Returns the
/// kernel's unpacked root and release.
pub fn setup() -> Fallible<Kernel> {
    let cache = cache();
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let _lock = labkit::lock::lock_dir(&cache).map_err(|f| f.to_string())?;
    // udev: virtme-ng's init finds its virtio-serial ports for the command's stdin,
    // stdout and stderr through the links udev makes (without it, nothing comes back).
    apt_install(&["qemu-system-x86", "e2fsprogs", "kmod", "util-linux", "udev"])?;
    virtme_ng(&cache)?;
    kernel(&cache)
}

fn apt_install(packages: &[&str]) -> Fallible<()> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| {
            !Command::new("dpkg")
                .args(["-s", p])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    say(&format!("apt-get install {}", missing.join(" ")));
    let apt = |args: &[&str]| {
        run_quiet(
            Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=600", "-qq"])
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    apt(&["update"])?;
    apt(&[&["install", "-y", "--no-install-recommends"][..], &missing].concat()).map(drop)
}

fn virtme_ng(cache: &Path) -> Fallible<()> {
    let vng = cache.join("venv/bin/vng");
    let have = Command::new(&vng).arg("--version").output().is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout).trim() == format!("virtme-ng {VIRTME_NG}")
    });
    if have {
        return Ok(());
    }
    say(&format!("pip install virtme-ng=={VIRTME_NG}"));
    let venv = cache.join("venv");
    if run_quiet(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )
    .is_err()
    {
        apt_install(&["python3-venv"])?;
        run_quiet(
            Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv),
        )?;
    }
    run_quiet(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .arg(format!("virtme-ng=={VIRTME_NG}")),
    )
    .map(drop)
}

/// Debian's kernel, unpacked once per version.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub release: String,
    /// The package's files: `boot/vmlinuz-*`, `lib/modules/*`.
    pub root: PathBuf,
}

impl Kernel {
    fn image(&self) -> PathBuf {
        self.root.join(format!("boot/vmlinuz-{}", self.release))
    }
}

fn kernel(cache: &Path) -> Fallible<Kernel> {
    let depends = |_: ()| {
        run_quiet(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))
            .ok()
            .and_then(|out| {
                out.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("Depends: linux-image-")
                        .map(str::to_string)
                })
            })
    };
    let release = match depends(()) {
        Some(r) => r,
        None => {
            run_quiet(Command::new("apt-get").args(["update", "-qq"]))?;
            depends(()).ok_or("no kernel package behind linux-image-amd64")?
        }
    };
    let dir = cache.join("kernel").join(&release);
    let kernel = Kernel {
        release: release.clone(),
        root: dir.join("root"),
    };
    if dir.join(".done").exists() {
        return Ok(kernel);
    }
    say(&format!(
        "downloading linux-image-{release} (unpacked into the cache, not installed)"
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let debs = dir.join("deb");
    std::fs::create_dir_all(&debs).map_err(|e| e.to_string())?;
    run_quiet(
        Command::new("apt-get")
            .args(["download", &format!("linux-image-{release}")])
            .current_dir(&debs),
    )?;
    let deb = std::fs::read_dir(&debs)
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or("apt-get download left no .deb")?;
    run_quiet(
        Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&kernel.root),
    )?;
    let _ = std::fs::remove_dir_all(&debs);
    run_quiet(
        Command::new("depmod")
            .arg("-a")
            .arg("-b")
            .arg(&kernel.root)
            .arg(&release),
    )?;
    std::fs::write(dir.join(".done"), "").map_err(|e| e.to_string())?;
    Ok(kernel)
}

/// `/dev/kvm` may be there and still refuse this kernel (a nested hypervisor that
/// runs only its own guests): boot it bare once under KVM and look for its banner.
fn kvm_works(kernel: &Kernel) -> bool {
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let answer = cache().join(format!("kvm-probe-{}-{}", host.trim(), kernel.release));
    if let Ok(known) = std::fs::read_to_string(&answer) {
        return known.trim() == "yes";
    }
    let usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let works = usable
        && Command::new("timeout")
            .args([
                "30",
                "qemu-system-x86_64",
                "-accel",
                "kvm",
                "-cpu",
                "host",
                "-m",
                "256",
            ])
            .args([
                "-smp",
                "1",
                "-nographic",
                "-no-reboot",
                "-nodefaults",
                "-serial",
                "stdio",
            ])
            .arg("-kernel")
            .arg(kernel.image())
            .args(["-append", "console=ttyS0 panic=-1"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Linux version"));
    let _ = std::fs::write(&answer, if works { "yes" } else { "no" });
    works
}

// ---------------------------------------------------------------- run

/// What the guest needs to know, written into the run directory.
#[derive(Debug, Clone)]
struct GuestConf {
    dir: PathBuf,
    /// No KVM: qemu emulates the CPU (tests then try races fewer times).
    emulated: bool,
    kernel_root: PathBuf,
    cgroup: Option<String>,
    /// Host paths mounted by virtme-ng itself, kept across the guest's remounts.
    keep: Vec<PathBuf>,
    /// (9p tag, path, read-only), shortest path first.
    shares: Vec<(String, PathBuf, bool)>,
}

impl GuestConf {
    fn to_json(&self) -> String {
        serde_json::json!({
            "dir": self.dir,
            "emulated": self.emulated,
            "kernel_root": self.kernel_root,
            "cgroup": self.cgroup,
            "keep": self.keep,
            "shares": self.shares.iter().map(|(t, p, ro)| serde_json::json!([t, p, ro])).collect::<Vec<_>>(),
        })
        .to_string()
    }

    fn from_json(text: &str) -> Option<GuestConf> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let path = |v: &serde_json::Value| v.as_str().map(PathBuf::from);
        Some(GuestConf {
            dir: path(&v["dir"])?,
            emulated: v["emulated"].as_bool()?,
            kernel_root: path(&v["kernel_root"])?,
            cgroup: v["cgroup"].as_str().map(str::to_string),
            keep: v["keep"].as_array()?.iter().filter_map(path).collect(),
            shares: v["shares"]
                .as_array()?
                .iter()
                .filter_map(|s| Some((s[0].as_str()?.to_string(), path(&s[1])?, s[2].as_bool()?)))
                .collect(),
        })
    }
}

// ANCHOR: run
/// Boot the VM, run `command` in it, and return its exit code (124 on timeout).
pub fn run(vm: &Vm, command: &[String]) -> Fallible<i32> {
    let kernel = setup()?;
    let kvm = kvm_works(&kernel);
    let run = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(cache())
        .map_err(|e| e.to_string())?;
    let run_dir = run.path();
    std::fs::set_permissions(run_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let conf = write_run_files(run_dir, vm, &kernel, !kvm, command)?;
    scratch_disk(run_dir)?;
    say(&format!(
        "booting {} ({}, {} cpus, {} MiB, cgroup {}) for: {}",
        kernel.release,
        if kvm { "kvm" } else { "tcg" },
        vm.cpus,
        vm.memory_mib,
        vm.cgroup.as_deref().unwrap_or("/ (bare)"),
        command.join(" ")
    ));
    let started = Instant::now();
    let timed_out = boot(vng(vm, &kernel, kvm, run_dir, &conf)?, vm.timeout)?;
    let status = std::fs::read_to_string(run_dir.join("status")).ok();
    let took = started.elapsed().as_secs();
    match (status.and_then(|s| s.trim().parse::<i32>().ok()), timed_out) {
        (Some(code), _) => {
            say(&format!("exit {code} (VM up {took} s)"));
            Ok(code)
        }
        (None, true) => {
            say(&format!("timed out after {took} s"));
            Ok(124)
        }
        (None, false) => Err(format!(
            "the VM ended without the command's status (after {took} s)"
        )),
    }
}
// ANCHOR_END: run

/// The command, the caller's environment (less this host's session) and the
/// guest's configuration, as files of the run directory the guest reads.
fn write_run_files(
    run_dir: &Path,
    vm: &Vm,
    kernel: &Kernel,
    emulated: bool,
    command: &[String],
) -> Fallible<GuestConf> {
    use std::os::unix::ffi::OsStrExt;
    let skip = [
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
        "HOSTNAME",
        "DISPLAY",
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "NOTIFY_SOCKET",
    ];
    let env: Vec<u8> = std::env::vars_os()
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            !skip.contains(&k.as_ref()) && !k.starts_with("SSH_") && !k.starts_with("XDG_")
        })
        .flat_map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes(), b"\0"].concat())
        .collect();
    let argv: Vec<u8> = command
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let mut shared: Vec<(PathBuf, bool)> = vec![(PathBuf::from("/usr"), true)];
    if let Some(home) = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_dir() && h != Path::new("/"))
    {
        shared.push((home, true));
    }
    shared.push((vm.dir.clone(), false));
    shared.extend(vm.shares.iter().map(|p| (p.clone(), false)));
    // Shortest first: a path inside another is mounted on top of it.
    shared.sort_by_key(|(p, _)| p.as_os_str().len());
    shared.dedup_by(|a, b| a.0 == b.0);
    let conf = GuestConf {
        dir: vm.dir.clone(),
        emulated,
        kernel_root: kernel.root.clone(),
        cgroup: vm.cgroup.clone(),
        keep: vec![run_dir.to_path_buf(), kernel.root.clone()],
        shares: shared
            .iter()
            .enumerate()
            .map(|(i, (p, ro))| (format!("labfs{i}"), p.clone(), *ro))
            .collect(),
    };
    for (name, bytes) in [
        ("env", env),
        ("argv", argv),
        ("conf", conf.to_json().into_bytes()),
    ] {
        std::fs::write(run_dir.join(name), bytes).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(conf)
}

/// virtme-ng's command line: the kernel, the machine, the shared paths (9p), and
/// this program as the guest's command.
fn vng(vm: &Vm, kernel: &Kernel, kvm: bool, run_dir: &Path, conf: &GuestConf) -> Fallible<Command> {
    // This program runs the guest's side from the run directory, which virtme-ng
    // shares from the start (the workspace may sit where the guest's /var/tmp hides it).
    let me = run_dir.join("lab");
    std::env::current_exe()
        .and_then(|exe| std::fs::copy(exe, &me))
        .map_err(|e| format!("copying this program into the run directory: {e}"))?;
    let qemu: Vec<String> = conf
        .shares
        .iter()
        .map(|(tag, path, ro)| {
            let ro = if *ro { ",readonly=on" } else { "" };
            format!(
                "-fsdev local,id={tag},path={},security_model=none,multidevs=remap{ro} \
                 -device virtio-9p-pci,fsdev={tag},mount_tag={tag}",
                path.display()
            )
        })
        .collect();
    let mut vng = Command::new(cache().join("venv/bin/vng"));
    vng.arg("--run")
        .arg(kernel.image())
        .args(["--cpus", &vm.cpus.to_string()])
        .args(["--memory", &format!("{}M", vm.memory_mib)])
        .args(["--name", "labvm"])
        .args([
            "--append",
            "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1",
        ])
        .arg("--rwdir")
        .arg(run_dir)
        .arg("--rodir")
        .arg(&kernel.root)
        .arg("--disk")
        .arg(run_dir.join("scratch.img"))
        .arg("--exec")
        .arg(format!("{} vm-guest {}", me.display(), run_dir.display()));
    if !kvm {
        vng.arg("--disable-kvm");
    }
    vng.arg(format!("--qemu-opts={}", qemu.join(" ")));
    let path = format!(
        "{}:{}",
        cache().join("venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    vng.env("PATH", path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(vng)
}

/// Run virtme-ng, copying what the guest prints (qemu reopens stdout and stderr for
/// the guest's streams: through pipes, nothing is lost). True if it timed out.
fn boot(mut vng: Command, timeout: Option<Duration>) -> Fallible<bool> {
    use std::os::unix::process::CommandExt;
    vng.process_group(0);
    let mut child = vng.spawn().map_err(|e| format!("vng: {e}"))?;
    let noise = [
        "probed the format as",
        "Automatically detecting the format",
        "write operations on block 0",
        "Specify the 'raw' format",
        "Image format was not specified",
    ];
    let copy = |from: Box<dyn std::io::Read + Send>, to_err: bool| {
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                if noise.iter().any(|n| line.contains(n)) {
                    continue;
                }
                match to_err {
                    true => eprintln!("{line}"),
                    false => println!("{line}"),
                }
            }
        })
    };
    let out = copy(Box::new(child.stdout.take().expect("piped")), false);
    let err = copy(Box::new(child.stderr.take().expect("piped")), true);
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut timed_out = false;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) => {}
            Err(e) => return Err(e.to_string()),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            // The VM and whatever it started: a process group of our own making.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            timed_out = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = (out.join(), err.join());
    Ok(timed_out)
}

/// An ext4 image holding copies of `/etc` and `/var` and an empty `/tmp`: the
/// guest's writable places, thrown away with the run directory.
fn scratch_disk(run_dir: &Path) -> Fallible<()> {
    let stage = run_dir.join("stage");
    std::fs::create_dir_all(stage.join("tmp")).map_err(|e| e.to_string())?;
    run_quiet(
        Command::new("cp")
            .args(["-a", "/etc"])
            .arg(stage.join("etc")),
    )?;
    let tar = Command::new("tar")
        .args(["-C", "/", "--one-file-system", "-cf", "-"])
        .args([
            "--exclude=./var/tmp/*",
            "--exclude=./var/cache/*",
            "--exclude=./var/log/*",
        ])
        .args([
            "--exclude=./var/lib/docker",
            "--exclude=./var/lib/containerd",
            "--exclude=./var/lib/containers",
        ])
        .args([
            "--exclude=./var/lib/mini-docker",
            "--exclude=./var/lib/lxc",
            "--exclude=./var/lib/machines",
        ])
        .arg("./var")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    run_quiet(
        Command::new("tar")
            .arg("-C")
            .arg(&stage)
            .arg("-xf")
            .arg("-")
            .stdin(tar.stdout.ok_or("tar's output")?),
    )?;
    for dir in ["tmp", "var/tmp"] {
        let _ = std::fs::create_dir_all(stage.join(dir));
        let _ = std::fs::set_permissions(stage.join(dir), std::fs::Permissions::from_mode(0o1777));
    }
    let image = run_dir.join("scratch.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(40 << 30))
        .map_err(|e| e.to_string())?;
    run_quiet(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", SCRATCH_LABEL])
            .args(["-E", "lazy_itable_init=1,lazy_journal_init=1", "-d"])
            .arg(&stage)
            .arg(&image),
    )?;
    let _ = std::fs::remove_dir_all(&stage);
    Ok(())
}

// ---------------------------------------------------------------- the guest

/// In the guest, as root (virtme-ng's init runs us): set the machine up, run the
/// command, write its exit code. 125 when the guest could not be set up.
pub fn guest(run_dir: &Path) -> i32 {
    let code = match GuestConf::from_json(
        &std::fs::read_to_string(run_dir.join("conf")).unwrap_or_default(),
    ) {
        None => {
            eprintln!("lab vm (guest): no configuration in {}", run_dir.display());
            125
        }
        Some(conf) => match guest_setup(&conf) {
            Err(e) => {
                eprintln!("lab vm (guest): {e}");
                125
            }
            Ok(()) => guest_command(run_dir, &conf),
        },
    };
    let _ = std::fs::write(run_dir.join("status"), format!("{code}\n"));
    nix::unistd::sync();
    code
}

fn guest_setup(conf: &GuestConf) -> Fallible<()> {
    cgroup2_only()?;
    let run = Path::new("/run/labvm");
    std::fs::create_dir_all(run).map_err(|e| e.to_string())?;
    let modprobe = modprobe_from_the_package(run, conf)?;
    // Loop devices, as a laptop has them: the device tests attack a loop "disk".
    let _ = Command::new(&modprobe).args(["-q", "loop"]).status();
    let scratch = mount_scratch_disk(run, &modprobe)?;
    writable_places(run, &scratch, conf)?;
    // The host's paths, with the page cache on (cache=loose): without it each exec
    // of a large binary reads it all again through 9p, ~10x slower when emulated.
    for (tag, path, ro) in &conf.shares {
        let _ = std::fs::create_dir_all(path);
        let flags = if *ro {
            MsFlags::MS_RDONLY
        } else {
            MsFlags::empty()
        };
        mount(
            Some(tag.as_str()),
            path,
            Some("9p"),
            flags,
            Some("trans=virtio,version=9p2000.L,access=any,msize=512000,cache=loose"),
        )
        .map_err(|e| format!("9p {}: {e}", path.display()))?;
    }
    modules_in_place(conf)?;
    cgroup_layout(conf.cgroup.as_deref())
}

/// The mount table's (mount point, filesystem type) pairs, in order.
fn mounts() -> Vec<(String, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(mount_line)
        .collect()
}

/// One cgroup2 tree at /sys/fs/cgroup (mounted if init did not), and no v1.
fn cgroup2_only() -> Fallible<()> {
    let at_cgroup = mounts().into_iter().rfind(|(p, _)| p == "/sys/fs/cgroup");
    if at_cgroup.is_none_or(|(_, t)| t != "cgroup2") {
        mount(
            Some("cgroup2"),
            "/sys/fs/cgroup",
            Some("cgroup2"),
            MsFlags::empty(),
            Some("nsdelegate"),
        )
        .map_err(|e| format!("mount cgroup2: {e}"))?;
    }
    match mounts().into_iter().find(|(_, t)| t == "cgroup") {
        Some((point, _)) => Err(format!("a cgroup v1 hierarchy is mounted at {point}")),
        None => Ok(()),
    }
}

/// The kernel's module requests (and iptables') go through a modprobe that knows
/// where the unpacked package keeps them.
fn modprobe_from_the_package(run: &Path, conf: &GuestConf) -> Fallible<PathBuf> {
    let modprobe = run.join("modprobe");
    let script = format!(
        "#!/bin/sh\nexec /sbin/modprobe -d {} \"$@\"\n",
        conf.kernel_root.display()
    );
    std::fs::write(&modprobe, script)
        .and_then(|()| std::fs::set_permissions(&modprobe, std::fs::Permissions::from_mode(0o755)))
        .and_then(|()| {
            std::fs::write(
                "/proc/sys/kernel/modprobe",
                modprobe.as_os_str().as_encoded_bytes(),
            )
        })
        .map_err(|e| format!("modprobe: {e}"))?;
    Ok(modprobe)
}

/// The scratch disk, found by its label (its driver may be a module), mounted.
fn mount_scratch_disk(run: &Path, modprobe: &Path) -> Fallible<PathBuf> {
    let find = || {
        run_quiet(Command::new("blkid").args(["-L", SCRATCH_LABEL])).map(|d| d.trim().to_string())
    };
    let mut device = find();
    if device.is_err() {
        for m in ["virtio_blk", "virtio_scsi", "sd_mod", "ext4"] {
            let _ = Command::new(modprobe).args(["-q", m]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while device.is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            device = find();
        }
    }
    let device = device.map_err(|_| "the scratch disk did not appear".to_string())?;
    let scratch = run.join("scratch");
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    mount(
        Some(device.as_str()),
        &scratch,
        Some("ext4"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mount {device}: {e}"))?;
    Ok(scratch)
}

/// Keep virtme-ng's own mounts of the host (some sit on its overlays), unmount
/// every overlay (its copy-on-write layers: tests must see only their own), put the
/// scratch disk's /etc, /var and /tmp in place, then the kept mounts back.
fn writable_places(run: &Path, scratch: &Path, conf: &GuestConf) -> Fallible<()> {
    let bind = |from: &Path, to: &Path, flags: MsFlags| {
        mount(Some(from), to, None::<&str>, flags, None::<&str>)
            .map_err(|e| format!("bind {} on {}: {e}", from.display(), to.display()))
    };
    let rbind = MsFlags::MS_BIND | MsFlags::MS_REC;
    let kept: Vec<PathBuf> = (0..conf.keep.len())
        .map(|i| run.join(format!("keep{i}")))
        .collect();
    for (path, at) in conf.keep.iter().zip(&kept) {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        bind(path, at, rbind)?;
    }
    for _ in 0..5 {
        // Newest first: one may hide another (/usr over /usr/lib).
        for (point, _) in mounts().iter().rev().filter(|(_, t)| t == "overlay") {
            let _ = umount2(point.as_str(), MntFlags::MNT_DETACH);
        }
    }
    if let Some((point, _)) = mounts().into_iter().find(|(_, t)| t == "overlay") {
        return Err(format!("an overlay is still mounted at {point}"));
    }
    for dir in ["etc", "var", "tmp"] {
        bind(
            &scratch.join(dir),
            &Path::new("/").join(dir),
            MsFlags::MS_BIND,
        )?;
    }
    for (path, at) in conf.keep.iter().zip(&kept) {
        let _ = std::fs::create_dir_all(path);
        bind(at, path, rbind)?;
        let _ = umount2(at, MntFlags::MNT_DETACH);
    }
    Ok(())
}

/// `(mount point, filesystem type)` of a mountinfo line.
fn mount_line(line: &str) -> Option<(String, String)> {
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-")?;
    Some((
        fields.get(4)?.to_string(),
        fields.get(dash + 1)?.to_string(),
    ))
}

/// The package's modules where modprobe looks (`/usr/lib/modules/RELEASE`).
fn modules_in_place(conf: &GuestConf) -> Fallible<()> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    let modules = Path::new("/usr/lib/modules");
    if modules.join(release).exists() || !modules.is_dir() {
        return Ok(());
    }
    nix::mount::mount(
        Some("modules"),
        modules,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("mode=755"),
    )
    .map_err(|e| format!("tmpfs on /usr/lib/modules: {e}"))?;
    std::os::unix::fs::symlink(
        conf.kernel_root.join("lib/modules").join(release),
        modules.join(release),
    )
    .map_err(|e| format!("modules: {e}"))
}

// ANCHOR: cgroup_layout
/// systemd's layout: controllers enabled in the root and at every level down to the
/// command's group (a session scope), where this process then moves. Bare: nothing.
fn cgroup_layout(cgroup: Option<&str>) -> Fallible<()> {
    let Some(path) = cgroup else {
        return Ok(());
    };
    let root = Path::new("/sys/fs/cgroup");
    let plus: Vec<String> = CONTROLLERS.split(' ').map(|c| format!("+{c}")).collect();
    let enable = |dir: &Path| {
        std::fs::write(dir.join("cgroup.subtree_control"), plus.join(" "))
            .map_err(|e| format!("enabling {} in {}: {e}", CONTROLLERS, dir.display()))
    };
    enable(root)?;
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        dir.push(part);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if i + 1 < parts.len() {
            enable(&dir)?;
        }
    }
    std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
        .map_err(|e| format!("moving into {}: {e}", dir.display()))
}
// ANCHOR_END: cgroup_layout

fn guest_command(run_dir: &Path, conf: &GuestConf) -> i32 {
    let read0 = |name: &str| -> Vec<String> {
        std::fs::read(run_dir.join(name))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    };
    let argv = read0("argv");
    let Some((program, args)) = argv.split_first() else {
        return 125;
    };
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(&conf.dir).env_clear();
    for pair in read0("env") {
        if let Some((k, v)) = pair.split_once('=') {
            cmd.env(k, v);
        }
    }
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    cmd.env("HOSTNAME", hostname);
    if conf.emulated {
        cmd.env("LAB_EMULATED", "1");
    }
    let _ = std::io::stderr().flush();
    match cmd.status() {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
        }
        Err(e) => {
            eprintln!("lab vm (guest): {program}: {e}");
            127
        }
    }
}
