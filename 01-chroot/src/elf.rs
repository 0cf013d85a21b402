//! What a program needs before it can run: its ELF headers say it.
//!
//! A dynamically linked program names its *program interpreter* (the dynamic loader,
//! e.g. `/lib64/ld-linux-x86-64.so.2`) in the `PT_INTERP` header, and the shared
//! libraries it needs in `DT_NEEDED` entries. The kernel's `execve(2)` starts the
//! interpreter, which loads the libraries. In a rootfs both must be present, or
//! `execve` fails with ENOENT although the program itself is there.

use std::path::Path;

use goblin::elf::Elf;

/// What the ELF headers of one file say about running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfNeeds {
    /// `PT_INTERP`: the loader the kernel starts; `None` for a static program.
    pub interpreter: Option<String>,
    /// `DT_NEEDED`: library names (`libc.so.6`), looked up by the loader.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` or `DT_RPATH`: directories to look in first (`$ORIGIN` allowed).
    pub search_dirs: Vec<String>,
    /// 64-bit or 32-bit, and the machine: a library must match both.
    pub class_64: bool,
    pub machine: u16,
}

impl ElfNeeds {
    pub fn is_static(&self) -> bool {
        self.interpreter.is_none() && self.needed.is_empty()
    }
}

// ANCHOR: read_needs
/// Read the headers of `path`; `None` when it is not an ELF file (a script, say).
pub fn read_needs(path: &Path) -> Option<ElfNeeds> {
    let bytes = std::fs::read(path).ok()?;
    let elf = Elf::parse(&bytes).ok()?;
    let search_dirs = if elf.runpaths.is_empty() {
        &elf.rpaths
    } else {
        &elf.runpaths
    };
    Some(ElfNeeds {
        interpreter: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        search_dirs: search_dirs
            .iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        class_64: elf.is_64,
        machine: elf.header.e_machine,
    })
}
// ANCHOR_END: read_needs
