//! The coordinator's end-to-end suite (`coordinator.rs`) again, every harness on a fresh database
//! of a private PostgreSQL server instead of SQLite (see `common::backend`).

include!("coordinator.rs");

#[test]
fn this_run_is_on_postgres() {
    assert!(common::on_postgres());
}
