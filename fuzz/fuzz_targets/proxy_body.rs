#![no_main]
//! Any exec body or inspection through the Docker API proxy: see operator::properties::proxy_body.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    operator::properties::proxy_body(data);
});
