#![no_main]
//! Any request line to the Docker API proxy: see operator::properties::proxy_route.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((method, path)) = data.split_first() {
        if let Ok(path) = std::str::from_utf8(path) {
            operator::properties::proxy_route(*method, path);
        }
    }
});
