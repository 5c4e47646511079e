//! Extraction fuzzed for a bounded time: random hostile archives (`..` names, absolute
//! and climbing symlinks, hard links to the outside, whiteouts of names outside, mutated
//! headers) through chapter 3's `extract` and chapter 4's `apply`, both as a layer
//! directory (whiteouts recorded) and flattened (whiteouts applied as deletions). Nothing
//! outside the target may ever change. `FUZZ_SECONDS` sets the time per path (20 s in CI,
//! 5 s elsewhere); a failure prints the `FUZZ_SEED` that reproduces it.
use ch03_rootfs_pivot_root::extract::{ExtractOptions, extract};
use ch04_unionfs_layers::{ApplyOptions, Whiteouts, apply};
use testkit::hostile::{fuzz, fuzz_seconds};

#[test]
fn fuzzed_archives_never_change_anything_outside_the_target() {
    let secs = fuzz_seconds();
    let extracted = fuzz(secs, &|bytes, target| {
        let _ = extract(bytes, target, ExtractOptions::default());
    });
    let layered = fuzz(secs, &|bytes, target| {
        let _ = apply(bytes, target, &ApplyOptions::layer());
    });
    let flattened = fuzz(secs, &|bytes, target| {
        let options = ApplyOptions {
            whiteouts: Whiteouts::Apply,
            devices: false,
        };
        let _ = apply(bytes, target, &options);
    });
    eprintln!(
        "fuzzed for {secs} s each: {extracted} extracted, {layered} applied as layers, \
         {flattened} flattened, no escape"
    );
    assert!(extracted > 0 && layered > 0 && flattened > 0);
}
