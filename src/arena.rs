//! The binary's allocator for start-up: a bump arena in the zero-filled
//! .bss, then the system allocator (issue 19).
//!
//! A boot makes about a thousand small allocations (clap's command, the
//! environment, the config) and execs a millisecond later. musl's allocator
//! maps and unmaps a group of pages for each size class it grows into: 26
//! mmap and 18 munmap calls on the boot path, a quarter of beamup's own
//! start-up time on these machines. Here an allocation takes the next bytes
//! of one static arena, the last one is given back or grown in place (a
//! growing Vec), and nothing is ever returned to the kernel: the exec drops
//! the whole image anyway. The first 160 KiB, about what a boot uses, are
//! mapped in one madvise call instead of one page fault per page.
//!
//! The arena serves the boot only: [`close`] hands every later allocation to
//! the system allocator. It is closed in the reporter child and by `--init`
//! before they start their loops, and by every command but the boot, so a
//! long-lived process never accumulates blocks the arena cannot reuse; an
//! arena block is still freed correctly (as a no-op) after that. The arena
//! is the global allocator of the binary only (`main.rs`), not of the tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

/// About twice what a boot allocates in all (clap, the environment, the
/// config, the records); past it, the system allocator takes over. Pages
/// never touched cost nothing (.bss).
const SIZE: usize = 512 * 1024;
/// What a boot touches of the arena, about: populated at once (below).
const POPULATE: usize = 160 * 1024;
/// madvise(2)'s MADV_POPULATE_WRITE (Linux 5.14), not in the libc crate yet.
const MADV_POPULATE_WRITE: libc::c_int = 23;

#[repr(C, align(4096))]
struct Space(UnsafeCell<[u8; SIZE]>);

// SAFETY: the bytes are handed out in disjoint blocks through `NEXT`'s
// compare-exchange; no two owners ever share one.
unsafe impl Sync for Space {}

static SPACE: Space = Space(UnsafeCell::new([0; SIZE]));
/// The offset of the first free byte.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// The highest offset ever handed out: the bytes above it are still zero.
static HIGH: AtomicUsize = AtomicUsize::new(0);
static OPEN: AtomicBool = AtomicBool::new(true);
static POPULATED: AtomicBool = AtomicBool::new(false);

/// Later allocations go to the system allocator (see the module doc).
pub fn close() {
    OPEN.store(false, SeqCst);
}

/// The global allocator of the binary (`#[global_allocator]` in `main.rs`).
pub struct StartupArena;

fn base() -> usize {
    SPACE.0.get() as usize
}

/// The offset of `ptr` in the arena, if it is an arena block.
fn offset(ptr: *mut u8) -> Option<usize> {
    (ptr as usize).checked_sub(base()).filter(|&o| o < SIZE)
}

/// A block of `layout` from the arena: its offset, or None when the arena
/// is closed or full.
fn take(layout: Layout) -> Option<usize> {
    if !OPEN.load(SeqCst) {
        return None;
    }
    // `base()` is page-aligned, so aligning the offset aligns the address
    // (larger alignments go to the system allocator).
    if layout.align() > 4096 {
        return None;
    }
    if !POPULATED.swap(true, SeqCst) {
        // The pages a boot uses, mapped in one call rather than one page
        // fault each (about 40): ~0.05 ms less here. Older kernels refuse the
        // advice, and the pages fault in as before.
        // SAFETY: the range lies within the arena, which is ours and mapped.
        let _ =
            unsafe { libc::madvise(base() as *mut libc::c_void, POPULATE, MADV_POPULATE_WRITE) };
    }
    let mut next = NEXT.load(SeqCst);
    loop {
        let start = next.checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size()).filter(|&e| e <= SIZE)?;
        match NEXT.compare_exchange_weak(next, end, SeqCst, SeqCst) {
            Ok(_) => return Some(start),
            Err(now) => next = now,
        }
    }
}

// SAFETY: blocks are disjoint (see `take`), aligned as asked, and a block
// is given back (`NEXT` lowered) only by its owner, when it is the last one.
unsafe impl GlobalAlloc for StartupArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match take(layout) {
            Some(start) => {
                HIGH.fetch_max(start + layout.size(), SeqCst);
                (base() + start) as *mut u8
            }
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match take(layout) {
            Some(start) => {
                let end = start + layout.size();
                // Only what was handed out before may be dirty: a large zeroed
                // table (tracing's span slab) costs no page it does not use.
                let dirty = HIGH.fetch_max(end, SeqCst).min(end).saturating_sub(start);
                let ptr = (base() + start) as *mut u8;
                // SAFETY: [ptr, ptr + dirty) lies within the block just taken.
                unsafe { ptr.write_bytes(0, dirty) };
                ptr
            }
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match offset(ptr) {
            // The last block is given back; any other stays until the exec.
            Some(start) => {
                let _ = NEXT.compare_exchange(start + layout.size(), start, SeqCst, SeqCst);
            }
            // SAFETY: not an arena block, so the system allocator's.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(start) = offset(ptr) else {
            // SAFETY: not an arena block, so the system allocator's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        // The last block grows or shrinks in place (a Vec being filled).
        let end = start + layout.size();
        if let Some(new_end) = start.checked_add(new_size).filter(|&e| e <= SIZE)
            && OPEN.load(SeqCst)
            && NEXT.compare_exchange(end, new_end, SeqCst, SeqCst).is_ok()
        {
            HIGH.fetch_max(new_end, SeqCst);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `new_size` is non-zero and, rounded to the alignment, fits
        // isize (the caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as above.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the old size and disjoint.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arena is not the tests' allocator: exercised directly. One test,
    /// as the arena is one static for the whole process.
    #[test]
    fn hands_out_aligned_disjoint_blocks_and_grows_the_last_in_place() {
        let a = StartupArena;
        unsafe {
            let l8 = Layout::from_size_align(24, 8).unwrap();
            let x = a.alloc(l8);
            let y = a.alloc(Layout::from_size_align(100, 64).unwrap());
            assert_eq!(y as usize % 64, 0);
            assert!(y as usize >= x as usize + 24);
            x.write_bytes(0xaa, 24);
            // The last block grows in place, keeping its bytes.
            y.write_bytes(7, 100);
            let y2 = a.realloc(y, Layout::from_size_align(100, 64).unwrap(), 4000);
            assert_eq!(y, y2);
            assert_eq!(*y2.add(99), 7);
            // Not the last one: moved, the bytes copied.
            let x2 = a.realloc(x, l8, 48);
            assert_ne!(x, x2);
            assert_eq!(*x2.add(23), 0xaa);
            // Given back when last, then handed out zeroed again.
            a.dealloc(x2, Layout::from_size_align(48, 8).unwrap());
            let z = a.alloc_zeroed(Layout::from_size_align(48, 8).unwrap());
            assert_eq!(z, x2);
            assert!((0..48).all(|i| *z.add(i) == 0));
            // Too large for the arena: the system's.
            let big = Layout::from_size_align(SIZE + 1, 8).unwrap();
            let s = a.alloc(big);
            assert!(offset(s).is_none());
            a.dealloc(s, big);
            close();
            let after = a.alloc(l8);
            assert!(offset(after).is_none(), "closed: the system's");
            a.dealloc(after, l8);
            a.dealloc(z, Layout::from_size_align(48, 8).unwrap());
        }
    }
}
