//! `--network` and `-p`, kept in a container's config as chapter 05 parsed them,
//! and turned into chapter 05's options: once by `create` to check them, again at
//! each start, when `container:NAME` becomes the process whose network is joined.

use ch05_network::args::{DEFAULT_BRIDGE, Mode, Options, Publish};
use labkit::{Failure, Result};

use crate::container;
use crate::store::Store;

/// Chapter 05's options for a container on mini-docker's one bridge.
pub fn options(mode: Mode, publish: &[Publish]) -> Result<Options> {
    let options = Options {
        mode,
        bridge: DEFAULT_BRIDGE.into(),
        subnet: None,
        ip: None,
        publish: publish.to_vec(),
        mtu: None,
    };
    options.check_flags()?;
    Ok(options)
}

/// `container:NAME` as chapter 05 reads `container:PID`: Docker names the other
/// container; the kernel wants one of its processes, running now.
pub fn at_start(store: &Store, config: &container::Config) -> Result<Options> {
    let mode = match &config.network {
        Mode::Container(name) => {
            let state = container::find(store, name)?.state()?;
            if !state.running {
                return Err(Failure::new(format!(
                    "--network container:{name}: that container is not running"
                )));
            }
            Mode::Container(state.pid.to_string())
        }
        mode => mode.clone(),
    };
    options(mode, &config.publish)
}
