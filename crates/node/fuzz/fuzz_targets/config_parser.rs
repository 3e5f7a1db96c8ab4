//! `cargo +nightly fuzz run config_parser`: any config.toml text parses or is refused with a
//! message naming the file; the value checks that read no files never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match mpc_node::Config::parse(text, "config.toml") {
        Ok(cfg) => {
            let _ = cfg.engine();
            let _ = cfg.threshold();
            let _ = cfg.listen_addr();
            let _ = cfg.client_addr();
        }
        Err(e) => assert!(e.to_string().starts_with("config.toml: ")),
    }
});
