//! `mpc-bench protocols [--json FILE] [--quick] …` (see `mpc_bench`) and
//! `mpc-bench e2e […]` (see `mpc_bench::e2e`). Also a multi-call binary like `mpc-devnet`
//! (`mpc-bench node|platform|callback-demo ARGS`), so the devnet `e2e` starts runs this same
//! executable for every process.
use anyhow::{Context as _, anyhow};

fn main() -> std::process::ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = mpc_devnet::multicall::dispatch(&argv) {
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mpc-bench: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("e2e") {
        let (opts, json) = mpc_bench::e2e::parse_args(&args[1..])?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let report = rt.block_on(mpc_bench::e2e::run(&opts, |m| eprintln!("{m}")))?;
        print!("{}", mpc_bench::e2e::table(&report));
        if let Some(file) = json {
            std::fs::write(&file, serde_json::to_string_pretty(&report)?)
                .map_err(|e| anyhow!("write {file}: {e}"))?;
            eprintln!("wrote {file}");
        }
        let failed: usize = report.phases.iter().map(|p| p.failed).sum();
        if failed > 0 {
            anyhow::bail!("{failed} request(s) failed or did not verify (see the table)");
        }
        return Ok(());
    }
    let (opts, json) = mpc_bench::parse_args(&args)?;
    let report = mpc_bench::run_protocols(&opts)?;
    print!("{}", mpc_bench::table(&report));
    if let Some(file) = json {
        std::fs::write(&file, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow!("write {file}: {e}"))?;
        eprintln!("wrote {file}");
    }
    Ok(())
}
