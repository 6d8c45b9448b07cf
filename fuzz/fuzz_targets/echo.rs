#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| vaultgate::fuzzing::echo(data));
