//! beamup's binary: everything lives in the library; `main` only maps the
//! outcome to an exit code (the shape of sharkdp/fd's `main.rs`).

/// A bump arena for the boot, then musl's allocator (`beamup::arena`).
#[global_allocator]
static ALLOCATOR: beamup::arena::StartupArena = beamup::arena::StartupArena;

fn main() {
    std::process::exit(beamup::main_entry());
}
