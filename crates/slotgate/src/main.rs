//! The `slotgate` binary: all of it lives in the library.

fn main() -> std::process::ExitCode {
    slotgate::cli::main()
}
