//! The limits a learner asks for, parsed the way `docker run` parses them, and
//! checked against this machine before anything is created.

use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;

use labkit::failure::Context;
use labkit::{Failure, Result};
use serde::{Deserialize, Serialize};

use crate::devices::DeviceRule;

// ANCHOR: limit_args
/// `run`'s limits, with `docker run`'s flag names: chapter 03's `run` and
/// mini-docker's `run` take exactly these, parsed here once.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Memory limit, e.g. 64m or 1g. At the limit the kernel reclaims, then OOM-kills.
    #[arg(short = 'm', long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit (docker's meaning), e.g. 128m.
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU time, in CPUs: 0.5 is 50 ms of every 100 ms.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// The CPUs it may run on, e.g. 0 or 0-1 or 0,2.
    #[arg(
        long,
        visible_alias = "cpuset",
        value_name = "LIST",
        allow_hyphen_values = true
    )]
    pub cpuset_cpus: Option<String>,
    /// The most processes and threads at once (-1 or 0: no limit).
    #[arg(
        long,
        visible_alias = "pids",
        value_name = "N",
        allow_hyphen_values = true
    )]
    pub pids_limit: Option<String>,
    /// CPU share under contention, 1 to 10000 (100 is the default).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub cpu_weight: Option<String>,
    /// Limit reads from a disk, in bytes per second: DEVICE:RATE, e.g. /dev/sda:1mb.
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_read_bps: Vec<String>,
    /// Limit writes to a disk, in bytes per second: DEVICE:RATE, e.g. /dev/sda:1mb.
    #[arg(long, value_name = "DEVICE:RATE")]
    pub device_write_bps: Vec<String>,
    /// Limit reads from a disk, in operations per second: DEVICE:N.
    #[arg(long, value_name = "DEVICE:N")]
    pub device_read_iops: Vec<String>,
    /// Limit writes to a disk, in operations per second: DEVICE:N.
    #[arg(long, value_name = "DEVICE:N")]
    pub device_write_iops: Vec<String>,
}

impl LimitArgs {
    /// Every flag parsed and checked against this machine (its disks, its CPUs).
    pub fn limits(&self) -> Result<Limits> {
        let online = online_cpus();
        let count = expand_list(&online).map_or(1, |c| c.len());
        let throttle = |flag: &str, list: &[String], bytes: bool| {
            list.iter()
                .map(|t| parse_throttle(flag, t, bytes))
                .collect::<Result<Vec<_>>>()
        };
        let size = |flag: &str, text: &Option<String>| {
            text.as_deref().map(|t| parse_size(flag, t)).transpose()
        };
        let limits = Limits {
            memory: size("--memory", &self.memory)?,
            memory_swap: size("--memory-swap", &self.memory_swap)?,
            cpus: self
                .cpus
                .as_deref()
                .map(|c| parse_cpus(c, count))
                .transpose()?,
            cpuset: (self.cpuset_cpus.as_deref())
                .map(|c| parse_cpuset(c, &online))
                .transpose()?,
            pids: match self.pids_limit.as_deref().map(str::trim) {
                None | Some("-1" | "0") => None,
                Some(p) => Some(parse_count("--pids-limit", p, 1, 4_194_304)?),
            },
            cpu_weight: (self.cpu_weight.as_deref())
                .map(|w| parse_count("--cpu-weight", w, 1, 10_000))
                .transpose()?,
            device_read_bps: throttle("--device-read-bps", &self.device_read_bps, true)?,
            device_write_bps: throttle("--device-write-bps", &self.device_write_bps, true)?,
            device_read_iops: throttle("--device-read-iops", &self.device_read_iops, false)?,
            device_write_iops: throttle("--device-write-iops", &self.device_write_iops, false)?,
            devices: None,
        };
        match (limits.memory_swap, limits.memory) {
            (Some(_), None) => Err(Failure::new(
                "--memory-swap needs --memory: it is memory plus swap",
            )),
            (Some(swap), Some(memory)) if swap < memory => Err(Failure::new(
                "--memory-swap must be at least --memory (it counts memory plus swap)",
            )),
            _ => Ok(limits),
        }
    }
}
// ANCHOR_END: limit_args

/// What `run` was asked to limit. Kept in mini-docker's container config under
/// the names `docker inspect` shows in its `HostConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Limits {
    /// Bytes of memory (`--memory`).
    pub memory: Option<u64>,
    /// Bytes of memory plus swap (`--memory-swap`, docker's meaning).
    pub memory_swap: Option<u64>,
    /// CPUs' worth of time (`--cpus 0.5`: 50 ms of every 100 ms).
    pub cpus: Option<f64>,
    /// Which CPUs (`--cpuset-cpus 0-1,3`), as the kernel writes the list.
    #[serde(rename = "CpusetCpus", alias = "Cpuset")]
    pub cpuset: Option<String>,
    /// The most tasks (processes and threads) at once.
    #[serde(rename = "PidsLimit")]
    pub pids: Option<u64>,
    /// Relative share under contention, 1 to 10000 (v2's cpu.weight; default 100).
    pub cpu_weight: Option<u64>,
    /// Bytes per second read from a disk (`--device-read-bps /dev/sda:1mb`).
    #[serde(rename = "BlkioDeviceReadBps")]
    pub device_read_bps: Vec<ThrottleDevice>,
    /// Bytes per second written to a disk.
    #[serde(rename = "BlkioDeviceWriteBps")]
    pub device_write_bps: Vec<ThrottleDevice>,
    /// Reads per second from a disk.
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub device_read_iops: Vec<ThrottleDevice>,
    /// Writes per second to a disk.
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub device_write_iops: Vec<ThrottleDevice>,
    /// The devices the group may use (an allow-list; everything else refused), or
    /// `None` to leave them as the parent has them. Worked out at each start.
    #[serde(skip)]
    pub devices: Option<Vec<DeviceRule>>,
}

/// The CPUs this machine has online, as the kernel lists them (`0-1`).
pub fn online_cpus() -> String {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map_or_else(|_| "0".into(), |s| s.trim().to_string())
}

/// A disk and a rate, as `docker inspect` shows `BlkioDeviceReadBps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

impl Limits {
    /// Each throttle list with its key in v2's `io.max` and its file in v1's blkio.
    pub fn throttles(&self) -> [(&'static str, &'static str, &[ThrottleDevice]); 4] {
        [
            (
                "rbps",
                "blkio.throttle.read_bps_device",
                &self.device_read_bps,
            ),
            (
                "wbps",
                "blkio.throttle.write_bps_device",
                &self.device_write_bps,
            ),
            (
                "riops",
                "blkio.throttle.read_iops_device",
                &self.device_read_iops,
            ),
            (
                "wiops",
                "blkio.throttle.write_iops_device",
                &self.device_write_iops,
            ),
        ]
    }
}

/// The CFS period the kernel uses by default: quotas are per 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;

// ANCHOR: parse_size
/// `512k`, `64m`, `1g`, `1.5g`, `64MiB`, or plain bytes: docker's forms, powers of 1024.
pub fn parse_size(flag: &str, text: &str) -> Result<u64> {
    let wrong = || {
        Failure::new(format!(
            "{flag}: {text:?} is not a size; use e.g. 64M or 1G (or a number of bytes)"
        ))
    };
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let value: f64 = number.parse().map_err(|_| wrong())?;
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let shift = match unit.strip_suffix('i').unwrap_or(unit) {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(wrong()),
    };
    if !value.is_finite() || value <= 0.0 {
        return Err(Failure::new(format!(
            "{flag}: {text:?} must be more than zero; use e.g. 64M"
        )));
    }
    Ok((value * (1u64 << shift) as f64) as u64)
}
// ANCHOR_END: parse_size

pub fn parse_cpus(text: &str, online: usize) -> Result<f64> {
    let value: f64 = text.trim().parse().map_err(|_| {
        Failure::new(format!(
            "--cpus: {text:?} is not a number; use e.g. 0.5 for half a CPU"
        ))
    })?;
    if !value.is_finite() || value <= 0.0 {
        return Err(Failure::new(format!(
            "--cpus: {text} must be more than 0; use e.g. 0.5 for half a CPU"
        )));
    }
    if value > online as f64 {
        return Err(Failure::new(format!(
            "--cpus: {text} is more than the {online} CPU(s) this machine has"
        )));
    }
    Ok(value)
}

pub fn parse_count(flag: &str, text: &str, min: u64, max: u64) -> Result<u64> {
    let value: u64 = text
        .trim()
        .parse()
        .map_err(|_| Failure::new(format!("{flag}: {text:?} is not a whole number")))?;
    if value < min || value > max {
        return Err(Failure::new(format!(
            "{flag}: {value} is out of range; use {min} to {max}"
        )));
    }
    Ok(value)
}

/// The CPUs a list like `0-1,3` names, checked against the online CPUs (`0-1`).
pub fn parse_cpuset(text: &str, online: &str) -> Result<String> {
    let wrong = || {
        Failure::new(format!(
            "--cpuset-cpus: {text:?} is not a CPU list; use e.g. 0 or 0-1 or 0,2"
        ))
    };
    let available = expand_list(online)
        .ok_or_else(|| Failure::new(format!("cannot read the online CPUs ({online:?})")))?;
    let wanted = expand_list(text).ok_or_else(wrong)?;
    if let Some(cpu) = wanted.iter().find(|c| !available.contains(c)) {
        return Err(Failure::new(format!(
            "--cpuset-cpus: CPU {cpu} does not exist here; this machine has CPUs {}",
            online.trim()
        )));
    }
    Ok(text.trim().to_string())
}

// ANCHOR: parse_throttle
/// `--device-write-bps /dev/sda:1mb` (a size per second) or `--device-write-iops
/// /dev/sda:100` (a count): Docker's form. The disk must exist now.
pub fn parse_throttle(flag: &str, text: &str, bytes: bool) -> Result<ThrottleDevice> {
    let example = if bytes {
        "/dev/sda:1mb"
    } else {
        "/dev/sda:100"
    };
    let (path, rate) = text.rsplit_once(':').ok_or_else(|| {
        Failure::new(format!(
            "{flag}: {text:?} is not DEVICE:RATE; use e.g. {example}"
        ))
    })?;
    if !path.starts_with('/') {
        return Err(Failure::new(format!(
            "{flag}: {path:?} is not a device path; use e.g. {example}"
        )));
    }
    device_number(flag, path)?;
    let rate = match bytes {
        true => parse_size(flag, rate)?,
        false => parse_count(flag, rate, 1, u64::MAX)?,
    };
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate,
    })
}
// ANCHOR_END: parse_throttle

// ANCHOR: device_number
/// The `MAJOR:MINOR` the kernel names a disk by in `io.max`: a block device, and a
/// whole disk (the kernel throttles disks, not their partitions).
pub fn device_number(flag: &str, path: &str) -> Result<String> {
    let meta = std::fs::metadata(path).context(|| format!("{flag}: {path}"))?;
    if !meta.file_type().is_block_device() {
        return Err(Failure::new(format!(
            "{flag}: {path} is not a block device (a disk such as /dev/sda; see lsblk)"
        )));
    }
    let rdev = meta.rdev();
    let number = format!("{}:{}", libc::major(rdev), libc::minor(rdev));
    let sys = std::path::PathBuf::from(format!("/sys/dev/block/{number}"));
    if sys.join("partition").exists() {
        let disk = std::fs::canonicalize(&sys)
            .ok()
            .and_then(|p| Some(p.parent()?.file_name()?.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "the whole disk".into());
        return Err(Failure::new(format!(
            "{flag}: {path} is a partition; the kernel throttles whole disks: use /dev/{disk}"
        )));
    }
    Ok(number)
}
// ANCHOR_END: device_number

/// `0-2,5` -> [0, 1, 2, 5]
pub fn expand_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = vec![];
    for part in text.trim().split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// v1's `cpu.shares` for a v2 `cpu.weight` (the mapping runc and systemd use).
pub fn weight_to_shares(weight: u64) -> u64 {
    2 + ((weight - 1) * 262_142) / 9_999
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        let size = |s| parse_size("--memory", s);
        assert_eq!(size("512k").unwrap(), 512 << 10);
        assert_eq!(size("64m").unwrap(), 64 << 20);
        assert_eq!(size("64M").unwrap(), 64 << 20);
        assert_eq!(size("64MiB").unwrap(), 64 << 20);
        assert_eq!(size("64mb").unwrap(), 64 << 20);
        assert_eq!(size("1g").unwrap(), 1 << 30);
        assert_eq!(size("1.5g").unwrap(), 3 << 29);
        assert_eq!(size("4096").unwrap(), 4096);
        for wrong in ["12XB", "", "m", "-1m", "1..2m", "0", "64mbb"] {
            assert!(size(wrong).is_err(), "{wrong:?}");
        }
        assert_eq!(
            size("12XB").unwrap_err().message(),
            "--memory: \"12XB\" is not a size; use e.g. 64M or 1G (or a number of bytes)"
        );
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(expand_list("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(expand_list("3-1"), None);
        assert!(parse_cpuset("0", "0-1").is_ok());
        assert!(
            parse_cpuset("2", "0-1")
                .unwrap_err()
                .message()
                .contains("CPU 2 does not exist")
        );
        assert!(parse_cpuset("x", "0-1").is_err());
    }

    #[test]
    fn throttles() {
        let wrong = |t: &str| {
            parse_throttle("--device-read-bps", t, true)
                .unwrap_err()
                .message()
                .to_string()
        };
        assert!(wrong("/dev/sda").contains("is not DEVICE:RATE"));
        assert!(wrong("sda:1mb").contains("is not a device path"));
        assert!(wrong("/dev/null:1mb").contains("is not a block device"));
        assert!(wrong("/no/such:1mb").contains("No such file or directory"));
    }

    #[test]
    fn limit_args_as_docker_reads_them() {
        let args = |f: fn(&mut LimitArgs)| {
            let mut args = LimitArgs::default();
            f(&mut args);
            args.limits()
        };
        let limits = args(|a| {
            a.memory = Some("64m".into());
            a.memory_swap = Some("128m".into());
            a.pids_limit = Some("10".into());
        })
        .unwrap();
        assert_eq!(
            (limits.memory, limits.memory_swap),
            (Some(64 << 20), Some(128 << 20))
        );
        assert_eq!(limits.pids, Some(10));
        // -1 and 0: no limit, as docker reads --pids-limit.
        for none in ["-1", "0"] {
            let a = LimitArgs {
                pids_limit: Some(none.into()),
                ..LimitArgs::default()
            };
            assert_eq!(a.limits().unwrap().pids, None, "{none}");
        }
        let swap_alone = args(|a| a.memory_swap = Some("1g".into())).unwrap_err();
        assert!(
            swap_alone.message().contains("needs --memory"),
            "{swap_alone}"
        );
        let too_many = args(|a| a.pids_limit = Some("5000000".into())).unwrap_err();
        assert!(
            too_many
                .message()
                .starts_with("--pids-limit: 5000000 is out of range")
        );
        let weight = args(|a| a.cpu_weight = Some("0".into())).unwrap_err();
        assert!(weight.message().starts_with("--cpu-weight:"), "{weight}");
    }

    #[test]
    fn cpus_and_weights() {
        assert_eq!(parse_cpus("0.5", 2).unwrap(), 0.5);
        assert!(parse_cpus("0", 2).is_err());
        assert!(parse_cpus("-1", 2).is_err());
        assert!(parse_cpus("3", 2).is_err());
        assert_eq!(weight_to_shares(100), 2 + 99 * 262_142 / 9_999);
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10_000), 262_144);
    }
}
