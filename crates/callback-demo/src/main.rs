//! `mpc-callback-demo` binary: the command line lives in the library
//! ([`mpc_callback_demo::cli::main`]) so that `mpc-devnet callback-demo ...` runs the same code.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(mpc_callback_demo::cli::main(std::env::args_os().collect()));
}
