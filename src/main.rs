//! beamup's binary: everything lives in the library; `main` only maps the
//! outcome to an exit code (the shape of sharkdp/fd's `main.rs`).

fn main() {
    std::process::exit(beamup::main_entry());
}
