//! `--network` and `-p`, as stored in a container's config, turned into chapter
//! 05's options when the container starts.

use ch05_network::args::DEFAULT_BRIDGE;
use ch05_network::run::{Mode, Options};
use labkit::{Failure, Result};
use nix::unistd::Pid;

use crate::container::{self, Config};
use crate::store::Store;

pub fn options(store: &Store, config: &Config) -> Result<Options> {
    let mode = match config.network.strip_prefix("container:") {
        // Docker names the other container; the kernel wants a process.
        Some(name) => {
            let other = container::find(store, name)?;
            let state = other.state()?;
            if !state.running {
                return Err(Failure::new(format!(
                    "--network container:{name}: that container is not running"
                )));
            }
            Mode::Container(Pid::from_raw(state.pid))
        }
        None => config.network.parse::<Mode>().map_err(Failure::new)?,
    };
    let publish = config
        .publish
        .iter()
        .map(|p| {
            p.parse()
                .map_err(|e: String| Failure::new(format!("-p {p}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Options {
        mode,
        bridge: DEFAULT_BRIDGE.into(),
        subnet: None,
        ip: None,
        publish,
        mtu: None,
    })
}
