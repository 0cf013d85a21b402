//! cgroup v2's device controller: a BPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! attached to the group. The kernel runs it at every `open(2)` and `mknod(2)` of a
//! device node by a process of the group (and of groups beneath it), with a
//! `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }`; it returns
//! 1 to allow, 0 to refuse (`EPERM`). runc, crun and youki write the same program.
//!
//! The program is built here, instruction by instruction, from the allow-list: one
//! block per rule that jumps to the next block when a field does not match, and
//! returns 1 at its end; after the last block, 0.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use labkit::{Failure, Result, narrate};

use crate::devices::DeviceRule;

/// One BPF instruction, as the kernel reads it (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// Destination register in the low 4 bits, source in the high 4.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// The opcodes this program uses (linux/bpf_common.h, linux/bpf.h).
/// `dst = *(u32 *)(src + off)`
pub const LDX_W: u8 = 0x61;
/// `dst &= imm` (64-bit)
pub const AND_K: u8 = 0x57;
/// `dst >>= imm` (64-bit)
pub const RSH_K: u8 = 0x77;
/// `dst = src`
pub const MOV_X: u8 = 0xbf;
/// `dst = imm`
pub const MOV_K: u8 = 0xb7;
/// `if dst != imm goto +off`
pub const JNE_K: u8 = 0x55;
/// `return r0`
pub const EXIT: u8 = 0x95;

/// `access_type`: the device's kind in the low 16 bits, the access in the high 16.
pub const DEV_BLOCK: i32 = 1;
pub const DEV_CHAR: i32 = 2;
pub const ACC_MKNOD: i32 = 1;
pub const ACC_READ: i32 = 2;
pub const ACC_WRITE: i32 = 4;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |bits, c| {
        bits | match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        }
    })
}

// ANCHOR: program
/// The program for an allow-list. Registers: r2 = kind, r3 = access, r4 = major,
/// r5 = minor (read from the context in r1 first); r1 is then free for scratch.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),      // r2 = ctx->access_type
        insn(AND_K, 2, 0, 0, 0xffff), // r2 &= 0xffff: the kind
        insn(LDX_W, 3, 1, 0, 0),      // r3 = ctx->access_type
        insn(RSH_K, 3, 0, 0, 16),     // r3 >>= 16: the access
        insn(LDX_W, 4, 1, 4, 0),      // r4 = ctx->major
        insn(LDX_W, 5, 1, 8, 0),      // r5 = ctx->minor
    ];
    for rule in rules {
        // Each test jumps past this block's end when it fails; `None` is filled in
        // below, once the block's length is known.
        let mut block: Vec<(Insn, bool)> = vec![];
        match rule.kind {
            'b' => block.push((insn(JNE_K, 2, 0, 0, DEV_BLOCK), true)),
            'c' => block.push((insn(JNE_K, 2, 0, 0, DEV_CHAR), true)),
            _ => {}
        }
        let refused = !access_bits(&rule.access) & 0b111;
        if refused != 0 {
            // Any asked-for access outside the rule's: not this rule.
            block.push((insn(MOV_X, 1, 3, 0, 0), false)); // r1 = access
            block.push((insn(AND_K, 1, 0, 0, refused), false)); // r1 &= refused
            block.push((insn(JNE_K, 1, 0, 0, 0), true)); // if r1 != 0: next
        }
        if let Some(major) = rule.major {
            block.push((insn(JNE_K, 4, 0, 0, major as i32), true));
        }
        if let Some(minor) = rule.minor {
            block.push((insn(JNE_K, 5, 0, 0, minor as i32), true));
        }
        block.push((insn(MOV_K, 0, 0, 0, 1), false)); // allowed: return 1
        block.push((insn(EXIT, 0, 0, 0, 0), false));
        let len = block.len();
        for (i, (mut ins, to_next)) in block.into_iter().enumerate() {
            if to_next {
                ins.off = (len - i - 1) as i16; // to the first instruction after the block
            }
            prog.push(ins);
        }
    }
    prog.push(insn(MOV_K, 0, 0, 0, 0)); // no rule matched: return 0
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}
// ANCHOR_END: program

/// `bpf(2)`'s commands and constants used here (linux/bpf.h).
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of the groups above (systemd's, say) still run too.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `union bpf_attr` for BPF_PROG_LOAD, as far as this program needs it.
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::io::Result<i32> {
    // SAFETY: `attr` is a live, #[repr(C)] prefix of union bpf_attr whose size we
    // pass; the kernel reads no further, and zeroes past it are its defaults.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *const T, size_of::<T>()) };
    match r {
        -1 => Err(std::io::Error::last_os_error()),
        fd => Ok(fd as i32),
    }
}

fn failed(what: &str, e: std::io::Error, log: &[u8]) -> Failure {
    let log = String::from_utf8_lossy(log);
    let log = log.trim_end_matches('\0').trim();
    let hint = match e.raw_os_error() {
        Some(libc::EPERM) => " (bpf(2) needs root: CAP_SYS_ADMIN, or CAP_BPF)",
        _ => "",
    };
    let verifier = match log.is_empty() {
        true => String::new(),
        false => format!("; the verifier said:\n{log}"),
    };
    Failure::new(format!("{what}: {e}{hint}{verifier}"))
}

// ANCHOR: attach
/// Load the program of `rules` and attach it to the v2 group at `group`. The group
/// holds the program from then on; it goes when the group is removed.
pub fn attach(group: &Path, rules: &[DeviceRule]) -> Result<()> {
    let prog = program(rules);
    narrate::step(
        format!(
            "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, {} instructions for {} rules), \
             bpf(BPF_PROG_ATTACH, {}, BPF_CGROUP_DEVICE)",
            prog.len(),
            rules.len(),
            group.display()
        ),
        format!(
            "bpftool prog load devices.o /sys/fs/bpf/dev type cgroup/dev; \
             bpftool cgroup attach {} device pinned /sys/fs/bpf/dev multi",
            group.display()
        ),
    );
    let license = c"GPL";
    let mut log = vec![];
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    // Without a log first: the verifier writing one costs more than loading. Only
    // when it refuses is it asked again, for its reasons.
    let fd = bpf(BPF_PROG_LOAD, &load).or_else(|first| {
        log.resize(64 * 1024, 0);
        load.log_level = 1;
        load.log_size = log.len() as u32;
        load.log_buf = log.as_mut_ptr() as u64;
        bpf(BPF_PROG_LOAD, &load).map_err(|_| first)
    });
    let fd = fd.map_err(|e| failed("loading the device filter (bpf BPF_PROG_LOAD)", e, &log))?;
    // SAFETY: a new descriptor the kernel just returned to us alone.
    let program = unsafe { OwnedFd::from_raw_fd(fd) };
    let dir = std::fs::File::open(group)
        .map_err(|e| failed(&format!("opening {}", group.display()), e, &[]))?;
    let attach = ProgAttach {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &attach).map_err(|e| {
        failed(
            &format!("attaching the device filter to {}", group.display()),
            e,
            &[],
        )
    })?;
    Ok(())
}
// ANCHOR_END: attach

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::docker_defaults;

    /// What the kernel does with the program: enough of a BPF machine for the
    /// instructions `program` writes (and jumps that must land inside it).
    fn run(prog: &[Insn], kind: i32, access: i32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16 | kind) as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = ctx[i.off as usize / 4] as u64;
                }
                AND_K => r[dst] &= i.imm as u64,
                RSH_K => r[dst] >>= i.imm,
                MOV_X => r[dst] = r[src],
                MOV_K => r[dst] = i.imm as u64,
                JNE_K if r[dst] != i.imm as u64 => {
                    pc += i.off as usize;
                    assert!(pc < prog.len(), "a jump out of the program");
                }
                JNE_K => {}
                EXIT => return r[0],
                code => panic!("unknown opcode {code:#x}"),
            }
        }
    }

    #[test]
    fn the_program_answers_as_the_rules_do() {
        let mut rules = docker_defaults();
        rules.push(DeviceRule::parse("b 7:* r").unwrap());
        let prog = program(&rules);
        for kind in [DEV_BLOCK, DEV_CHAR] {
            let k = if kind == DEV_BLOCK { 'b' } else { 'c' };
            for (access, a) in [(ACC_MKNOD, 'm'), (ACC_READ, 'r'), (ACC_WRITE, 'w')] {
                for (major, minor) in [(1, 3), (1, 1), (5, 2), (7, 0), (8, 0), (136, 9)] {
                    let expected = rules.iter().any(|r| r.allows(k, major, minor, a));
                    assert_eq!(
                        run(&prog, kind, access, major, minor) == 1,
                        expected,
                        "{k} {major}:{minor} {a}"
                    );
                }
            }
        }
        // Read and write at once (open O_RDWR): both must be allowed.
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ | ACC_WRITE, 7, 0), 0);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1);
    }

    #[test]
    fn no_rules_refuse_everything() {
        assert_eq!(run(&program(&[]), DEV_CHAR, ACC_READ, 1, 3), 0);
    }
}
