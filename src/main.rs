//! The `vaultgate` binary: a thin shell over the library's CLI.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(vaultgate::cli::run());
}
