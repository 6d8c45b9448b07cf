//! The `vaultgate` binary: a thin shell over the library's CLI.

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    std::process::exit(vaultgate::cli::run());
}
