//! Client bytes → line splitter → session over the in-memory world, fed whole,
//! one byte at a time and in pieces of sizes drawn from the input; every
//! property of `pop1d::testing::check` is asserted.
//!
//! The input is what the client sends. An input that holds the bytes
//! `\0MBOX\0` is split there: the client's bytes before, fred's mailbox after
//! (otherwise fred has PROTOCOL.md's example mail).

#![no_main]

use libfuzzer_sys::fuzz_target;
use pop1d::testing::{self, Setup};

const MAILBOX_MARK: &[u8] = b"\0MBOX\0";

fuzz_target!(|data: &[u8]| {
    let (client, setup) = match data
        .windows(MAILBOX_MARK.len())
        .position(|window| window == MAILBOX_MARK)
    {
        Some(at) => (
            &data[..at],
            Setup::with_fred_mail(&data[at + MAILBOX_MARK.len()..]),
        ),
        None => (data, Setup::default()),
    };
    testing::check(&setup, client, &read_sizes(data));
});

/// Read sizes from 1 to 300, drawn from the input (so that a run repeats
/// exactly), enough of them to cover it.
fn read_sizes(data: &[u8]) -> Vec<usize> {
    // FNV-1a of the input seeds a xorshift.
    let mut state = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
    }) | 1;
    (0..data.len().max(1))
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 300) as usize + 1
        })
        .collect()
}
