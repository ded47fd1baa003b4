//! The reader of `nft -j list ruleset` output (backend-nftables
//! kernel.rs): whatever the kernel (or a broken nft) prints, reading it
//! gives a state or an error, never a panic.
#![no_main]

use backend_nftables::KernelState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(state) = KernelState::parse(text) {
        // What the planner asks of a state read back must not panic either.
        let _ = state.free_tag();
        for template in state.templates.keys() {
            let _ = state.users(template);
        }
        for port in state.ports.values() {
            let _ = port.templates();
        }
    }
});
