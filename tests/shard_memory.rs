//! A shard of the subscriber table is read without reading the whole table (issue 17):
//! a counting allocator measures the peak of live heap bytes while `Subscribers::load`
//! reads a generated table of 300 000 subscribers whole, and while
//! `Subscribers::load_shard` reads shard 5 of 8 of it. Each batch is filtered as it is
//! read, so the shard's peak is a fraction of the whole table's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use churnseg::load::{SubscriberColumns, Subscribers};
use churnseg::shard::Shard;

mod common;
use common::{ok, s};

/// The system allocator, counting the bytes live and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on to the system allocator.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The peak of live bytes above those live before, while `f` runs, and its result.
fn peak_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    (PEAK.load(Ordering::Relaxed) - before, out)
}

#[test]
fn a_shard_of_the_subscriber_table_is_read_in_a_fraction_of_its_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let rows = 300_000;
    ok(&[
        "-q",
        "generate",
        "--subscribers",
        &rows.to_string(),
        "--days",
        "2",
        "--string-ids",
        "--out",
        s(&data),
    ]);
    let path = data.join("subscribers.parquet");
    let columns = SubscriberColumns::default();
    let (whole_peak, whole) = peak_of(|| Subscribers::load(&path, &columns).unwrap());
    assert_eq!(whole.len(), rows);
    drop(whole);
    let shard = Shard::each(8).nth(5).unwrap();
    let (shard_peak, part) = peak_of(|| Subscribers::load_shard(&path, &columns, shard).unwrap());
    eprintln!("peak live heap: whole table {whole_peak} bytes, shard 5 of 8 {shard_peak} bytes");
    assert!(
        part.len() > rows / 10 && part.len() < rows / 6,
        "shard 5 of 8 holds {} of {rows} subscribers",
        part.len()
    );
    assert!(
        shard_peak * 5 < whole_peak * 2,
        "reading one shard of 8 peaked at {shard_peak} bytes, reading the whole table at {whole_peak}"
    );
}
