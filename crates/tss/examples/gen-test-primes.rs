//! Writes N sets of safe primes as JSON to stdout, for the test fixtures.
//!
//! `cargo run --release -p mpc-tss --example gen-test-primes -- 6 > crates/tss/tests/fixtures/test-primes.json`
//!
//! These primes are published in the repository: they are for tests only and must never back a
//! real key.
fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(6);
    let pool = mpc_tss::primes::PrimePool::new(n);
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(1);
    let handles = pool.spawn_fillers(threads);
    while pool.len() < n {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    pool.stop();
    for h in handles {
        let _ = h.join();
    }
    let mut sets = pool.snapshot();
    sets.truncate(n);
    println!(
        "{}",
        serde_json::to_string_pretty(&sets).unwrap_or_default()
    );
}
