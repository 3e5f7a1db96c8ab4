//! The multi-call arms: `mpc-devnet node …`, `mpc-devnet callback-demo …`,
//! `mpc-devnet platform …` run each component's own command line in this process, so the
//! devnet can spawn `current_exe()` for every component.

use std::ffi::OsString;

/// The subcommands that run another component.
pub const COMPONENTS: [&str; 3] = ["node", "callback-demo", "platform"];

/// If `args[1]` names a component, runs its command line with `args[2..]` (the program name
/// becomes the component's binary name) and returns its exit status.
pub fn dispatch(args: &[OsString]) -> Option<i32> {
    let sub = args.get(1)?.to_str()?;
    let rest = || args.iter().skip(2).cloned();
    match sub {
        "node" => {
            let argv = std::iter::once(OsString::from("mpc-node"))
                .chain(rest())
                .collect();
            Some(mpc_node::cli::main(argv))
        }
        "callback-demo" => {
            let argv = std::iter::once(OsString::from("mpc-callback-demo"))
                .chain(rest())
                .collect();
            Some(mpc_callback_demo::cli::main(argv))
        }
        "platform" => {
            let argv = std::iter::once(OsString::from("mpc-platform"))
                .chain(rest())
                .collect();
            Some(mpc_platform::cli::main(argv))
        }
        _ => None,
    }
}
