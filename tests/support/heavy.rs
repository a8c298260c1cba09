//! One lock for the tests that load the whole machine: BEAM VMs, containers, release builds.
//!
//! Until issue 18 every `tests/*.rs` was a binary of its own and cargo ran them one after
//! the other, each with `--test-threads 2` (scripts/test.sh). So a test only ever overlapped
//! with one test of its own file, and five files (connect_hosts, cookie_hosts, docker_e2e,
//! doctor_hosts, operate_hosts) ran their VM tests strictly one at a time with a mutex of
//! their own: each boots up to five VMs (~100 MiB and about a CPU second each to boot) or a
//! cluster of containers, on machines with two cores, against deadlines. Now all tests share
//! one process and two threads, and without a lock a five-VM test could meet, say, a docker
//! build or another cluster and miss its deadlines.
//!
//! The policy, a reader-writer lock:
//! - [`exclusive`]: the tests that used to run alone (those five files' VM and container
//!   tests; docker_e2e's also share the Docker engine's swarm state) and static_build (two
//!   LTO release builds, both cores for minutes). No other heavy test runs while one holds
//!   it.
//! - [`shared`]: every other test that boots a VM (the boot, init, reporter, dist and
//!   harness tests). Two of them may run at once, as two tests of one file did before,
//!   but never next to an exclusive one.
//! - No lock: tests that only run beamup itself, in-process servers or namespaces without a
//!   VM (bad inputs, properties, discovery against a local DNS server, ...). They are
//!   short and keep the second thread busy.
//!
//! Take the guard first thing in the test (`let _heavy = testkit::heavy::shared();`) and
//! only once: a second guard taken while holding one can deadlock behind a waiting writer.
//! A test that panics poisons the lock; the next one takes it over, since the failure
//! is reported by that test and must not fail the others.

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

static HEAVY: RwLock<()> = RwLock::new(());

/// A held share of the lock, released on drop. Holding it across `.await` in a
/// `#[tokio::test]` is fine: each such test has a runtime of its own, and the lock is
/// only ever contended between test threads, never between tasks of one runtime.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct Guard {
    _held: Held,
}

enum Held {
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
}

/// Held while a test that needs the machine to itself runs (see the module docs).
pub fn exclusive() -> Guard {
    Guard {
        _held: Held::Exclusive(HEAVY.write().unwrap_or_else(PoisonError::into_inner)),
    }
}

/// Held while a VM test that may run next to one other such test runs.
pub fn shared() -> Guard {
    Guard {
        _held: Held::Shared(HEAVY.read().unwrap_or_else(PoisonError::into_inner)),
    }
}
