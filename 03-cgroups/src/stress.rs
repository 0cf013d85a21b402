//! `ch03-cgroups stress`: the binary is its own load generator, so that the demos
//! work inside a busybox rootfs with no extra tools.

use std::io::Write;
use std::time::{Duration, Instant};

use labkit::Result;
use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, fork};

// ANCHOR: stress_memory
/// Allocate `bytes`, 1 MiB at a time, touching every page so that the kernel really
/// has to provide it (an untouched allocation costs nothing).
pub fn memory(bytes: u64) -> Result<i32> {
    const MIB: usize = 1 << 20;
    let mut held: Vec<Vec<u8>> = vec![];
    let mut out = std::io::stdout();
    while (held.len() as u64) * (MIB as u64) < bytes {
        let mut chunk = vec![0u8; MIB];
        for page in chunk.iter_mut().step_by(4096) {
            *page = 1;
        }
        held.push(chunk);
        if held.len().is_multiple_of(16) {
            let _ = writeln!(out, "stress: {} MiB touched", held.len());
            let _ = out.flush();
        }
    }
    println!("stress: all {} MiB touched", held.len());
    Ok(0)
}
// ANCHOR_END: stress_memory

/// Spin on the CPU for `seconds` of wall time; report the CPU time we got.
pub fn cpu(seconds: f64) -> Result<i32> {
    let start = Instant::now();
    let mut x: u64 = 1;
    while start.elapsed() < Duration::from_secs_f64(seconds) {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0);
    println!(
        "stress: {usage:.2} s of CPU in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    Ok(0)
}

// ANCHOR: stress_fork
/// Try to start `count` processes that each live one second; count the refusals.
pub fn fork_many(count: u64) -> Result<i32> {
    let (mut started, mut refused) = (vec![], 0);
    for _ in 0..count {
        // SAFETY: single-threaded; the child only sleeps and exits.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                std::thread::sleep(Duration::from_secs(1));
                // SAFETY: ends the child without running the parent's exit handlers.
                unsafe { libc::_exit(0) }
            }
            Ok(ForkResult::Parent { child }) => started.push(child),
            // EAGAIN: the pids limit (or the user's process limit) says no.
            Err(Errno::EAGAIN) => refused += 1,
            Err(e) => return Err(labkit::Failure::new(format!("fork: {}", e.desc()))),
        }
    }
    for child in &started {
        let _ = waitpid(*child, None);
    }
    println!(
        "stress: started {} of {count} processes; {refused} forks refused (EAGAIN)",
        started.len()
    );
    Ok(0)
}
// ANCHOR_END: stress_fork

// ANCHOR: stress_write
/// Write `bytes` of zeros to `file` with `O_DIRECT`, past the page cache, so that
/// every byte goes to the disk at once (and under its throttle); then say how fast.
pub fn write(file: &std::path::Path, bytes: u64) -> Result<i32> {
    use std::os::unix::fs::OpenOptionsExt;
    const CHUNK: usize = 64 << 10;
    // O_DIRECT wants buffers aligned to the disk's blocks: 4 KiB covers them all.
    let mut buffer = vec![0u8; CHUNK + 4096];
    let skew = buffer.as_ptr().align_offset(4096);
    let chunk = &mut buffer[skew..skew + CHUNK];
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(file)
        .map_err(|e| {
            labkit::Failure::new(format!(
                "{}: {} (O_DIRECT needs a file on a disk, not on tmpfs or overlayfs)",
                file.display(),
                labkit::failure::describe_io(&e)
            ))
        })?;
    let start = Instant::now();
    let mut written = 0u64;
    while written < bytes {
        chunk.fill(1);
        out.write_all(chunk)
            .map_err(|e| labkit::Failure::new(format!("write {}: {e}", file.display())))?;
        written += CHUNK as u64;
    }
    let _ = out.sync_all();
    let seconds = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(file);
    let mib = written as f64 / (1 << 20) as f64;
    println!(
        "stress: wrote {mib:.1} MiB in {seconds:.2} s ({:.1} MiB/s)",
        mib / seconds
    );
    Ok(0)
}
// ANCHOR_END: stress_write
