//! The zero-copy data plane: kernel-owned bytes that a caller reads in
//! place.
//!
//! A request that produces bulk bytes (`ReadFile`, `JournalSnapshot`)
//! registers them here and answers a `View { id, length }`. The caller maps
//! the id to a pointer with `krepis_view_get()`, reads the bytes where they
//! lie (Deno: `UnsafePointerView.getArrayBuffer`, no copy), and frees them
//! with `krepis_view_release()`. The bytes never move while registered, and
//! an id is never reused, so a stale id is refused instead of naming other
//! bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::answer;
use crate::panic::guard;
use crate::result::{Failure, KrepisResult};

/// Kernel-owned bytes lent to the caller by `krepis_view_get()`.
#[repr(C)]
#[derive(Debug)]
pub struct KrepisView {
    /// Start of the bytes; valid until `krepis_view_release(id)`. NULL when
    /// the view is empty.
    pub ptr: *const u8,
    /// Number of bytes at `ptr`.
    pub len: usize,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
// Bytes of the views registered and not yet released.
static LENT: AtomicU64 = AtomicU64::new(0);
static VIEWS: Mutex<Option<HashMap<u64, Box<[u8]>>>> = Mutex::new(None);

fn views() -> MutexGuard<'static, Option<HashMap<u64, Box<[u8]>>>> {
    // A panic while the lock was held cannot leave the map half-updated
    // (each operation is one insert or remove), so a poisoned lock is safe.
    VIEWS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Registers `bytes` as a view and returns its id. The bytes stay where they
/// are until [`release`].
pub fn register(bytes: Vec<u8>) -> u64 {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    LENT.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    views()
        .get_or_insert_with(HashMap::new)
        .insert(id, bytes.into_boxed_slice());
    id
}

/// Frees the view `id`; false when no such view is registered.
pub fn release(id: u64) -> bool {
    let removed = views().as_mut().and_then(|map| map.remove(&id));
    if let Some(bytes) = &removed {
        LENT.fetch_sub(bytes.len() as u64, Ordering::Relaxed);
    }
    removed.is_some()
}

/// The bytes of the views lent and not yet released.
pub fn lent() -> u64 {
    LENT.load(Ordering::Relaxed)
}

/// Reads smaller than this are not checked against the memory left: the
/// check costs more than they do, and [`RESERVE`] covers them.
pub(crate) const UNCHECKED: u64 = 1024 * 1024;

/// Memory left free by every read, for the host's own use (its heap, its
/// threads): a read that would leave less is refused.
pub(crate) const RESERVE: u64 = 64 * 1024 * 1024;

/// The most bytes a read may take now: the memory this process may still
/// use (see [`crate::memory`]) less [`RESERVE`]; `None` when unknown.
pub fn room() -> Option<u64> {
    crate::memory::available().map(|free| free.saturating_sub(RESERVE))
}

/// The refusal of `len` bytes for `what` when only `room` fit.
pub fn no_room(len: u64, room: u64, what: &str) -> Failure {
    let lent = lent();
    let (held, hint) = if lent > 0 {
        (
            format!("; {lent} bytes are held by views not closed"),
            "close the views you no longer need (view.close(), or `using`): a view dropped without close() is freed only when collected",
        )
    } else {
        (String::new(), "read it in parts, or give the process more memory")
    };
    Failure::failed(format!(
        "Cannot read {what}: its {len} bytes do not fit in the memory this process may still use ({room} bytes{held})"
    ))
    .with_hint(hint)
}

/// Allocates `len` bytes of capacity, or fails with a message instead of
/// aborting the process when memory is short: before any page is touched,
/// `len` is checked against the memory the process may still use (its
/// cgroup's limit and the system's available memory), since under
/// overcommit the allocation itself would succeed. Reads under
/// [`UNCHECKED`] skip the check (it reads a few small files).
pub fn try_buffer(len: u64, what: &str) -> Result<Vec<u8>, Failure> {
    if len >= UNCHECKED
        && let Some(room) = room()
        && len > room
    {
        return Err(no_room(len, room, what));
    }
    let too_big = || {
        Failure::failed(format!("Cannot read {what}: its {len} bytes do not fit in memory"))
            .with_hint("read it in parts instead")
    };
    let len = usize::try_from(len).map_err(|_| too_big())?;
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| too_big())?;
    Ok(buffer)
}

fn unknown(id: u64) -> Failure {
    Failure::new(
        KrepisResult::UnknownHandle,
        format!("Cannot use view {id}: no such view (never issued, or already released)"),
    )
}

/// Lends the bytes of view `id`: `*out` receives their address and length.
///
/// The bytes are the kernel's and stay valid, unmoved and unchanged until
/// `krepis_view_release(id)`; do not write through the pointer. An unknown
/// or released id gives `KREPIS_RESULT_UNKNOWN_HANDLE` and leaves `*out`
/// untouched.
///
/// # Safety
/// `out` must be NULL or point to a writable `KrepisView`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn krepis_view_get(id: u64, out: *mut KrepisView) -> KrepisResult {
    guard(|| {
        // SAFETY: NULL is checked by as_mut; otherwise the caller promises a
        // valid, writable KrepisView.
        let out = unsafe { out.as_mut() }
            .ok_or_else(|| Failure::new(KrepisResult::NullPointer, "Cannot lend the view: out is NULL"));
        answer(out.and_then(|out| lend(id, out)))
    })
}

/// Writes the address and length of view `id` into `out`.
fn lend(id: u64, out: &mut KrepisView) -> Result<(), Failure> {
    let map = views();
    let bytes = map.as_ref().and_then(|map| map.get(&id)).ok_or_else(|| unknown(id))?;
    out.ptr = if bytes.is_empty() {
        std::ptr::null()
    } else {
        bytes.as_ptr()
    };
    out.len = bytes.len();
    Ok(())
}

/// Frees the bytes of view `id`. Afterwards any pointer lent for it is
/// dangling. Releasing an unknown or already released id gives
/// `KREPIS_RESULT_UNKNOWN_HANDLE` and frees nothing.
#[unsafe(no_mangle)]
pub extern "C" fn krepis_view_release(id: u64) -> KrepisResult {
    guard(|| answer(if release(id) { Ok(()) } else { Err(unknown(id)) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_lends_its_bytes_until_released() {
        let id = register(b"abc".to_vec());
        let mut out = KrepisView {
            ptr: std::ptr::null(),
            len: 0,
        };
        // SAFETY: out is a valid KrepisView.
        assert_eq!(unsafe { krepis_view_get(id, &mut out) }, KrepisResult::Ok);
        // SAFETY: the view is registered, so ptr holds len bytes.
        assert_eq!(unsafe { std::slice::from_raw_parts(out.ptr, out.len) }, b"abc");
        assert_eq!(krepis_view_release(id), KrepisResult::Ok);
        assert_eq!(krepis_view_release(id), KrepisResult::UnknownHandle);
        let mut after = KrepisView {
            ptr: std::ptr::null(),
            len: 7,
        };
        // SAFETY: after is a valid KrepisView.
        assert_eq!(unsafe { krepis_view_get(id, &mut after) }, KrepisResult::UnknownHandle);
        assert_eq!(after.len, 7, "outputs are written only on success");
    }

    #[test]
    fn ids_are_never_reused() {
        let first = register(vec![1]);
        assert!(release(first));
        let second = register(vec![2]);
        assert_ne!(first, second);
        assert!(release(second));
    }

    #[test]
    fn a_null_out_is_refused() {
        let id = register(vec![1]);
        // SAFETY: NULL out is part of the contract.
        let result = unsafe { krepis_view_get(id, std::ptr::null_mut()) };
        assert_eq!(result, KrepisResult::NullPointer);
        assert!(release(id));
    }

    #[test]
    fn an_impossible_size_is_an_error_not_an_abort() {
        assert!(try_buffer(u64::MAX, "a file").is_err());
        assert!(try_buffer(1 << 62, "a file").is_err());
    }
}
