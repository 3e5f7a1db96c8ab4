//! `mpc-node` binary: the command line lives in the library ([`mpc_node::cli::main`]) so that
//! `mpc-devnet node ...` runs exactly the same code. Exit status 0 on success, 1 on any error
//! (message on stderr).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(mpc_node::cli::main(std::env::args_os().collect()));
}
