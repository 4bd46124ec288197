#![no_main]
//! Any command the agent may send: see operator::properties::policy_command.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(command) = std::str::from_utf8(data) {
        operator::properties::policy_command(command);
    }
});
