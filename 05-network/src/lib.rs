//! Chapter 05: container networking.
//!
//! - [`args`]: what the command line says (mode, subnet, address, `-p`), checked
//!   before anything is made; the other modules read its types, it reads none of
//!   theirs;
//! - [`netlink`]: the kernel's network configuration, in-process (links, veths,
//!   addresses, routes) over rtnetlink;
//! - [`bridge`]: the host's bridge, its address, forwarding and NAT;
//! - [`ipam`]: which container holds which address and host ports (leases on disk,
//!   released when their holder is gone);
//! - [`netfilter`]: MASQUERADE, DNAT and FORWARD rules, written as Docker writes them;
//! - [`etc_files`]: a container's `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`;
//! - [`run`]: chapter 02's container on a network, in one of Docker's four modes,
//!   and [`run::Attachment`], a container's place on a bridge (mini-docker holds one);
//! - [`p2p`]: two containers and one veth pair, no bridge;
//! - [`show`]: the bridges as the host sees them; [`doctor`]: what the host lacks.

pub mod args;
pub mod bridge;
pub mod doctor;
pub mod etc_files;
pub mod ipam;
pub mod netfilter;
pub mod netlink;
pub mod p2p;
pub mod run;
pub mod show;
