//! The control-plane entry point and the kernel-owned response buffer.

use crate::control;
use crate::error::answer;
use crate::ffi::{out_buffer, request_bytes};
use crate::panic::guard;
use crate::result::{Failure, KrepisResult};

/// Bytes owned by the kernel. Release with `krepis_buffer_free()`.
#[repr(C)]
#[derive(Debug)]
pub struct KrepisBuffer {
    /// Start of the bytes; NULL when empty or freed.
    pub ptr: *mut u8,
    /// Number of bytes at `ptr`.
    pub len: usize,
}

/// Handles one protobuf-encoded `krepis.v1.Request`.
///
/// On `KREPIS_RESULT_OK`, `*response` receives the encoded
/// `krepis.v1.Response` in a kernel-owned buffer that the caller releases
/// with `krepis_buffer_free()`. On any other result `*response` is left
/// untouched and `krepis_last_error()` describes the failure.
///
/// `request` may be NULL only when `request_len` is 0.
///
/// # Safety
/// `request` must point to `request_len` readable bytes (or be NULL with a
/// length of 0); `response` must be NULL or point to a writable
/// `KrepisBuffer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn krepis_call(
    request: *const u8,
    request_len: usize,
    response: *mut KrepisBuffer,
) -> KrepisResult {
    guard(|| {
        // SAFETY: the caller's contract above is request_bytes' contract.
        answer(unsafe { out_buffer(response) }.and_then(|out| {
            // SAFETY: as above.
            let bytes = unsafe { request_bytes(request, request_len) }?;
            let encoded = control::handle(bytes)?;
            let boxed = encoded.into_boxed_slice();
            out.len = boxed.len();
            out.ptr = Box::into_raw(boxed).cast::<u8>();
            Ok(())
        }))
    })
}

/// Releases a buffer filled by `krepis_call()` and resets it to empty.
///
/// Accepts NULL, an empty buffer, and a buffer already freed: each is a
/// no-op.
///
/// # Safety
/// `buffer` must be NULL or point to a `KrepisBuffer` that was filled by
/// `krepis_call()` (or zeroed) and not modified since.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn krepis_buffer_free(buffer: *mut KrepisBuffer) {
    let _ = guard(|| {
        // SAFETY: NULL is checked by as_mut; otherwise the caller promises a
        // valid KrepisBuffer.
        let Some(buffer) = (unsafe { buffer.as_mut() }) else {
            return KrepisResult::Ok;
        };
        if !buffer.ptr.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(buffer.ptr, buffer.len);
            // SAFETY: ptr and len came from Box::into_raw of a boxed slice in
            // krepis_call and have not been freed (freeing resets them).
            drop(unsafe { Box::from_raw(slice) });
        }
        buffer.ptr = std::ptr::null_mut();
        buffer.len = 0;
        KrepisResult::Ok
    });
}

/// Copies a buffer filled by `krepis_call()` into caller memory, then frees
/// it: one call instead of a read through a foreign pointer plus
/// `krepis_buffer_free()`.
///
/// `dest` must hold at least `buffer->len` bytes; otherwise nothing is copied
/// or freed and `KREPIS_RESULT_INVALID_LENGTH` is returned. `dest` may be
/// NULL only when the buffer is empty.
///
/// # Safety
/// `buffer` must be NULL or point to a `KrepisBuffer` filled by
/// `krepis_call()` (or zeroed); `dest` must point to `dest_len` writable
/// bytes that do not overlap the buffer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn krepis_buffer_take(buffer: *mut KrepisBuffer, dest: *mut u8, dest_len: usize) -> KrepisResult {
    // SAFETY: the caller's contract above is take()'s.
    guard(|| answer(unsafe { take(buffer, dest, dest_len) }))
}

/// The body of `krepis_buffer_take()`.
///
/// # Safety
/// As `krepis_buffer_take()`.
unsafe fn take(buffer: *mut KrepisBuffer, dest: *mut u8, dest_len: usize) -> Result<(), Failure> {
    // SAFETY: NULL is checked by as_mut; otherwise the caller promises
    // a valid KrepisBuffer.
    let Some(source) = (unsafe { buffer.as_mut() }) else {
        return Err(Failure::new(
            KrepisResult::NullPointer,
            "Cannot copy the buffer: buffer is NULL",
        ));
    };
    if source.len > dest_len {
        return Err(Failure::new(
            KrepisResult::InvalidLength,
            format!(
                "Cannot copy the buffer: dest_len {dest_len} is smaller than its {} bytes",
                source.len
            ),
        ));
    }
    if source.len > 0 {
        if dest.is_null() || source.ptr.is_null() {
            return Err(Failure::new(
                KrepisResult::NullPointer,
                "Cannot copy the buffer: dest or the buffer is NULL",
            ));
        }
        // SAFETY: source holds len initialized bytes (from
        // krepis_call); dest holds at least len writable bytes and
        // does not overlap.
        unsafe { std::ptr::copy_nonoverlapping(source.ptr, dest, source.len) };
    }
    // SAFETY: buffer is a valid KrepisBuffer, as checked above.
    unsafe { krepis_buffer_free(buffer) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::last_error;

    fn empty() -> KrepisBuffer {
        KrepisBuffer {
            ptr: std::ptr::null_mut(),
            len: 0,
        }
    }

    #[test]
    fn null_response_is_refused() {
        // SAFETY: NULL response is part of the contract.
        let result = unsafe { krepis_call(std::ptr::null(), 0, std::ptr::null_mut()) };
        assert_eq!(result, KrepisResult::NullPointer);
        assert_eq!(last_error(), "Cannot write the response: response is NULL");
    }

    #[test]
    fn panic_is_caught_and_reported() {
        // krepis.v1.Request { fail: { message: "x", panic: true } }
        let request = [0x1a, 0x05, 0x0a, 0x01, b'x', 0x10, 0x01];
        let mut out = empty();
        // SAFETY: request and out are valid for the call.
        let result = unsafe { krepis_call(request.as_ptr(), request.len(), &mut out) };
        assert_eq!(result, KrepisResult::Panic);
        assert_eq!(last_error(), "Cannot complete the call: the kernel panicked: x");
        assert!(out.ptr.is_null(), "outputs are written only on success");
    }

    #[test]
    fn free_twice_is_harmless() {
        // krepis.v1.Request { echo: { payload: "hi" } }
        let request = [0x12, 0x04, 0x0a, 0x02, b'h', b'i'];
        let mut out = empty();
        // SAFETY: request and out are valid for the call.
        let result = unsafe { krepis_call(request.as_ptr(), request.len(), &mut out) };
        assert_eq!(result, KrepisResult::Ok);
        assert_eq!(last_error(), "");
        // SAFETY: out was filled by krepis_call; freeing resets it.
        unsafe {
            krepis_buffer_free(&mut out);
            krepis_buffer_free(&mut out);
            krepis_buffer_free(std::ptr::null_mut());
        }
        assert!(out.ptr.is_null());
    }

    #[test]
    fn take_copies_then_frees_and_refuses_a_short_destination() {
        let request = [0x12, 0x04, 0x0a, 0x02, b'h', b'i'];
        let mut out = empty();
        // SAFETY: request and out are valid for the call.
        let result = unsafe { krepis_call(request.as_ptr(), request.len(), &mut out) };
        assert_eq!(result, KrepisResult::Ok);
        let mut short = [0u8; 2];
        // SAFETY: short has 2 writable bytes; out came from krepis_call.
        let result = unsafe { krepis_buffer_take(&mut out, short.as_mut_ptr(), short.len()) };
        assert_eq!(result, KrepisResult::InvalidLength);
        assert!(!out.ptr.is_null(), "nothing is freed on failure");
        let mut dest = [0u8; 6];
        // SAFETY: dest has 6 writable bytes; out came from krepis_call.
        let result = unsafe { krepis_buffer_take(&mut out, dest.as_mut_ptr(), dest.len()) };
        assert_eq!(result, KrepisResult::Ok);
        assert_eq!(dest, request, "an Echo response encodes like its request");
        assert!(out.ptr.is_null());
        // SAFETY: NULL buffer is part of the contract.
        let result = unsafe { krepis_buffer_take(std::ptr::null_mut(), dest.as_mut_ptr(), 0) };
        assert_eq!(result, KrepisResult::NullPointer);
    }
}
