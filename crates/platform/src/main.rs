//! `mpc-platform` binary: everything is in the library ([`mpc_platform::cli::main`]).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(mpc_platform::cli::main(std::env::args_os().collect()));
}
