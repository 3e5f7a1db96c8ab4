//! `mpc-recover`: see the crate docs and `docs/recovery.md`.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(mpc_recover::cli::main(std::env::args_os().collect()));
}
