//! The panic boundary: no panic unwinds into foreign code.
//!
//! Every `extern "C"` body runs in [`guard`] or [`guard_value`]. A panic is
//! caught, its message becomes the thread's last error, and the caller gets
//! `KREPIS_RESULT_PANIC` (or the given fallback value).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::set_last_error;
use crate::result::KrepisResult;

/// Runs a fallible export body, mapping a panic to [`KrepisResult::Panic`].
pub fn guard(body: impl FnOnce() -> KrepisResult) -> KrepisResult {
    // AssertUnwindSafe: after a panic the kernel keeps no state that a
    // half-finished call could have corrupted (requests are independent).
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            set_last_error(&format!(
                "Cannot complete the call: the kernel panicked: {}",
                panic_message(&*payload)
            ));
            KrepisResult::Panic
        }
    }
}

/// Runs an export body that returns a plain value, answering `fallback` if it
/// panics.
pub fn guard_value<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "no message"
    }
}
