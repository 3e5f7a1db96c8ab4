//! The memory a hostile frame costs to decode, measured with a counting global allocator: a
//! frame just under [`MAX_FRAME_BYTES`] whose body (or a field inside it) is a CBOR array of
//! tiny items. A generic CBOR value tree costs ~32 bytes of heap per input byte (~256 MiB for
//! one 8 MiB frame); typed decoding stays within a small multiple of the input.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use mpc_transport::frame::{Frame, MAX_FRAME_BYTES};

struct Counting;

static NOW: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// The measurements run one at a time (the test harness runs tests on several threads).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = NOW.fetch_add(layout.size(), Ordering::SeqCst) + layout.size();
            PEAK.fetch_max(now, Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        NOW.fetch_sub(layout.size(), Ordering::SeqCst);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap growth while `f` runs, bytes.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = NOW.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    f();
    PEAK.load(Ordering::SeqCst).saturating_sub(base)
}

/// CBOR text string.
fn text(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 24);
    out.push(0x60 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// `{"v": 1, "kind": kind, "body": <array of n zeros>}`.
fn hostile(kind: &str, n: usize) -> Vec<u8> {
    let mut b = vec![0xa3];
    text(&mut b, "v");
    b.push(0x01);
    text(&mut b, "kind");
    text(&mut b, kind);
    text(&mut b, "body");
    b.push(0x9a);
    b.extend_from_slice(&(n as u32).to_be_bytes());
    b.resize(b.len() + n, 0);
    b
}

#[test]
fn a_hostile_array_body_costs_at_most_a_small_multiple_of_its_size() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let n = MAX_FRAME_BYTES - 64;
    for kind in [
        "challenge",
        "hello",
        "task",
        "task_result",
        "protocol",
        "abort",
        "ping",
    ] {
        let bytes = hostile(kind, n);
        assert!(bytes.len() <= MAX_FRAME_BYTES);
        let mut result = None;
        let peak = peak_during(|| result = Some(Frame::decode(&bytes)));
        let result = result.unwrap();
        println!(
            "{kind}: {} MiB frame, peak heap during decode {:.1} MiB ({})",
            bytes.len() >> 20,
            peak as f64 / (1 << 20) as f64,
            if result.is_ok() { "decoded" } else { "refused" }
        );
        assert!(
            peak <= 3 * bytes.len(),
            "{kind}: decoding an {} byte frame peaked at {peak} bytes of heap",
            bytes.len()
        );
    }
}

/// The same array nested as a field inside a protocol envelope (the payload), and as the
/// execution id of an abort: refused or decoded within the same bound.
#[test]
fn a_hostile_array_inside_a_body_is_bounded_too() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let n = MAX_FRAME_BYTES - 256;
    // {"v":1,"kind":"abort","body":{"execution_id": [0, 0, ...], "reason": ""}}
    let mut b = vec![0xa3];
    text(&mut b, "v");
    b.push(0x01);
    text(&mut b, "kind");
    text(&mut b, "abort");
    text(&mut b, "body");
    b.push(0xa2);
    text(&mut b, "execution_id");
    b.push(0x9a);
    b.extend_from_slice(&(n as u32).to_be_bytes());
    b.resize(b.len() + n, 0);
    text(&mut b, "reason");
    text(&mut b, "");
    let mut result = None;
    let peak = peak_during(|| result = Some(Frame::decode(&b)));
    assert!(result.unwrap().is_err());
    assert!(
        peak <= 3 * b.len(),
        "peak {peak} bytes for {} input",
        b.len()
    );
}
