//! `mpc-bench protocols [--json FILE] [--quick]`: see `mpc_bench`.
fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (opts, json) = mpc_bench::parse_args(&args)?;
    let report = mpc_bench::run_protocols(&opts)?;
    print!("{}", mpc_bench::table(&report));
    if let Some(file) = json {
        std::fs::write(&file, serde_json::to_string_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("write {file}: {e}"))?;
        eprintln!("wrote {file}");
    }
    Ok(())
}
