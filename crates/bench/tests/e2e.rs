//! `mpc-bench e2e` end to end: the real binary starts a real devnet (platform, three nodes,
//! callback demo on 127.0.0.1), signs through the API, verifies, and writes its report.

use std::process::Command;

use serde_json::Value;

#[test]
fn e2e_bench_signs_verifies_and_reports_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("e2e.json");
    let out = Command::new(env!("CARGO_BIN_EXE_mpc-bench"))
        .args([
            "e2e",
            "--only",
            "ecdsa-dkls23,eddsa,taproot",
            "--requests",
            "3",
        ])
        .args(["--concurrency", "1,2", "--lib-runs", "1", "--dir"])
        .arg(dir.path().join("devnet"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mpc-bench e2e failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("| eddsa | 1 | 3 | 3 | 0 |"), "{stdout}");
    assert!(
        stdout.contains("| ecdsa-dkls23 | 1 | 3 | 3 | 0 |"),
        "{stdout}"
    );

    let r: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let phases = r["phases"].as_array().unwrap();
    assert_eq!(
        phases.len(),
        6,
        "3 algorithms x 2 concurrency levels: {r:#}"
    );
    for p in phases {
        assert_eq!(p["verified"], 3, "every signature verified: {p:#}");
        assert_eq!(p["failed"], 0);
        let (p50, p99) = (p["p50_ms"].as_f64().unwrap(), p["p99_ms"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{p:#}");
        assert!(p["throughput_per_s"].as_f64().unwrap() > 0.0);
        assert!(
            p["polls"].as_u64().unwrap() >= 3,
            "one poll per request at least"
        );
        let names: Vec<&str> = p["processes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["process"].as_str().unwrap())
            .collect();
        for n in [
            "platform", "callback", "node-a", "node-b", "node-c", "client",
        ] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        // The nodes did the signing: they spent CPU and hold memory.
        for c in p["processes"].as_array().unwrap() {
            if c["process"].as_str().unwrap().starts_with("node-") {
                assert!(c["peak_rss_mib"].as_f64().unwrap() > 1.0, "{c:#}");
            }
        }
        assert!(p["cpu_s_total"].as_f64().unwrap() > 0.0, "{p:#}");
    }
    let lib: Vec<&str> = r["library"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(lib, ["dkls23.sign_path", "eddsa.sign", "taproot.sign"]);
    for alg in ["ecdsa-dkls23", "eddsa", "taproot"] {
        assert!(r["ratios"][alg].as_f64().unwrap() > 0.0, "{r:#}");
    }
}
