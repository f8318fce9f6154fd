//! The last error message, kept per thread, as rustls-ffi and errno do.
//!
//! This is where a [`Failure`] becomes text, once: [`answer`] turns an
//! export's outcome into its result code and records the rendered failure
//! for `krepis_last_error()`.

use std::cell::RefCell;
use std::ffi::{CString, c_char};

use crate::panic::{PanicValue, guard};
use crate::result::{Failure, KrepisResult};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Records `message` as this thread's last error. Interior NUL bytes are
/// replaced so the message always reaches C intact.
fn set_last_error(message: &str) {
    let clean = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = clean);
}

/// Forgets this thread's last error.
fn clear_last_error() {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = CString::default());
}

/// The result code of an export's outcome: on success the last error is
/// cleared and `KREPIS_RESULT_OK` answered; on failure the failure, rendered,
/// becomes the last error and its code is answered.
pub fn answer(outcome: Result<(), Failure>) -> KrepisResult {
    match outcome {
        Ok(()) => {
            clear_last_error();
            KrepisResult::Ok
        }
        Err(failure) => {
            set_last_error(&failure.render());
            failure.code
        }
    }
}

/// An export returning a result code answers `KREPIS_RESULT_PANIC` when it
/// panicked, with the panic as the last error.
impl PanicValue for KrepisResult {
    fn on_panic(message: &str) -> Self {
        answer(Err(Failure::new(
            KrepisResult::Panic,
            format!("Cannot complete the call: the kernel panicked: {message}"),
        )))
    }
}

/// This thread's last error as an owned string.
#[cfg(test)]
pub fn last_error() -> String {
    LAST_ERROR.with(|slot| slot.borrow().to_string_lossy().into_owned())
}

/// The message of the last failed call on this thread, or "" after a call
/// that succeeded.
///
/// The pointer stays valid until the next kernel call on the same thread;
/// copy the string if you need it longer. Never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn krepis_last_error() -> *const c_char {
    guard(|| {
        // The CString lives in a thread-local that is only replaced by the
        // next call on this thread, which is the documented lifetime.
        LAST_ERROR.with(|slot| slot.borrow().as_ptr())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_renders_the_failure_once_and_ok_clears_it() {
        let failure = Failure::new(KrepisResult::Busy, "Cannot open the journal: it is open").with_hint("wait");
        assert_eq!(answer(Err(failure)), KrepisResult::Busy);
        assert_eq!(last_error(), "Cannot open the journal: it is open\nHint: wait");
        assert_eq!(answer(Ok(())), KrepisResult::Ok);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn a_panic_in_a_result_export_is_recorded() {
        assert_eq!(guard::<KrepisResult>(|| panic!("boom")), KrepisResult::Panic);
        assert_eq!(last_error(), "Cannot complete the call: the kernel panicked: boom");
    }
}
