//! Memory a thread freed comes back to the operating system when it calls
//! `release_free_memory`, on the allocator the build selects (`--features mimalloc`: mimalloc
//! as the global allocator, as the gateway's binary has it; without: the C library's malloc).
//! Linux only: the resident set is read from `/proc/self/status`.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Blocks of the size a connection's buffers have, 32 MiB in all.
const BLOCK: usize = 8 * 1024;
const BLOCKS: usize = 4096;

fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn freed_memory_is_given_back_on_the_thread_that_freed_it() {
    if rss_kb().is_none() {
        eprintln!("skipped: no /proc/self/status to read the resident set from");
        return;
    }
    let allocator = legacy_gateway_alloc_release::ALLOCATOR;
    if allocator == "none" {
        eprintln!("skipped: this C library has no way to give memory back");
        return;
    }
    // One thread does it all: a mimalloc heap is per thread.
    let (before, filled, freed, released) = std::thread::spawn(|| {
        let before = rss_kb().unwrap();
        let mut blocks: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8 | 1; BLOCK]).collect();
        // Kept past the release: glibc could otherwise give the freed blocks back on its own,
        // from the top of the heap.
        let pin = vec![7u8; BLOCK];
        let filled = rss_kb().unwrap();
        blocks.clear();
        blocks.shrink_to_fit();
        let freed = rss_kb().unwrap();
        legacy_gateway_alloc_release::release_free_memory();
        let released = rss_kb().unwrap();
        assert_eq!(pin[BLOCK - 1], 7);
        (before, filled, freed, released)
    })
    .join()
    .unwrap();
    let grown = filled.saturating_sub(before);
    eprintln!(
        "{allocator}: RSS {before} kB, {filled} kB filled, {freed} kB freed, {released} kB released"
    );
    assert!(
        grown >= 16 * 1024,
        "32 MiB of blocks grew RSS by {grown} kB only"
    );
    assert!(
        released <= before + grown / 4,
        "{allocator}: at most a quarter of the {grown} kB freed may stay resident; \
         before {before} kB, freed {freed} kB, after the release {released} kB"
    );
}
