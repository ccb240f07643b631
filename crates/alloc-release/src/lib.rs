//! Gives the memory the allocator holds free back to the operating system.
//!
//! An allocator keeps what a program frees, to hand it out again without asking the kernel.
//! After a burst (thousands of connections that closed) that is the burst's peak, kept for as
//! long as the process stays idle: mimalloc purges the pages a thread freed only when that
//! thread's heap is next worked on, and glibc's malloc returns an arena's memory only from its
//! top. [`release_free_memory`] asks the allocator to give it back now.
//!
//! This crate exists to hold the two `unsafe` foreign calls that takes, so that the gateway
//! itself can keep `#![forbid(unsafe_code)]`. Which call is made follows the allocator the
//! gateway is built with: the `mimalloc` feature (the gateway's default) calls `mi_collect`;
//! without it, on glibc, `malloc_trim`; anywhere else nothing.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

/// The allocator [`release_free_memory`] releases for in this build: `"mimalloc"`, `"glibc"`,
/// or `"none"` (a C library without `malloc_trim`: the call does nothing).
pub const ALLOCATOR: &str = imp::NAME;

/// Returns to the operating system the memory the allocator holds free.
///
/// With mimalloc, only the calling thread's heap is collected (mimalloc's heaps are per
/// thread, and a thread's freed pages are its own to purge), so call it on the thread that
/// freed the memory. With glibc every arena is trimmed, whoever calls.
///
/// It walks the heap's pages and makes a few system calls (`madvise`) for the free ones: cheap
/// once, too dear for every request. Call it when a thread goes quiet after work, not on a
/// hot path.
pub fn release_free_memory() {
    imp::release();
}

#[cfg(feature = "mimalloc")]
mod imp {
    pub const NAME: &str = "mimalloc";

    pub fn release() {
        // SAFETY: `mi_collect` takes no pointer and frees no block the program still holds: it
        // only returns pages that are already free. mimalloc documents it as callable at any
        // time from any thread; it works on the calling thread's own heap and on shared
        // arenas under mimalloc's own synchronisation. `force = true` purges at once instead
        // of after mimalloc's purge delay, which an idle thread would never reach.
        unsafe { libmimalloc_sys::mi_collect(true) }
    }
}

#[cfg(all(not(feature = "mimalloc"), target_os = "linux", target_env = "gnu"))]
mod imp {
    pub const NAME: &str = "glibc";

    pub fn release() {
        // SAFETY: `malloc_trim` takes no pointer and frees no block the program still holds:
        // it returns the free pages of every arena (not only the top, since glibc 2.8),
        // taking each arena's lock, so it is safe to call from any thread at any time. Its
        // result (whether anything was released) changes nothing here.
        let _ = unsafe { libc::malloc_trim(0) };
    }
}

#[cfg(all(
    not(feature = "mimalloc"),
    not(all(target_os = "linux", target_env = "gnu"))
))]
mod imp {
    pub const NAME: &str = "none";

    pub fn release() {}
}
