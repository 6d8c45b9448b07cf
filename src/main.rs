//! The `vaultgate` binary: a thin shell over the library's CLI.

fn main() {
    std::process::exit(vaultgate::cli::run());
}
