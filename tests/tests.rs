//! beamup's integration tests: one crate, one module per behaviour (ripgrep's
//! tests/tests.rs, rust-analyzer's slow-tests). A test binary links the whole library, so
//! one binary instead of one per file is ~20 times less to link after an edit to src/.
//!
//! The shared fixture is the `testkit` crate (tests/support), which the benchmarks use too.
//! Tests that boot BEAM VMs, containers or release builds take [`testkit::heavy`]'s lock:
//! they used to run binary by binary, now they share one process (see that module).
//!
//! Run one module with `cargo test --test integration boot_mix::`.

mod address_hosts;
mod bad_inputs;
mod boot_mix;
mod boot_relx;
mod connect_hosts;
mod cookie_hosts;
mod discovery_dns;
mod dist_local;
mod docker_e2e;
mod doctor_hosts;
mod files_hostile;
mod harness_selftest;
mod init_reporter;
mod init_signals;
mod init_stop;
mod init_zombies;
mod metadata_sources;
mod operate_hosts;
mod properties;
mod readme;
mod reporter_hosts;
mod signals_before_exec;
mod static_build;
mod toolchains;
