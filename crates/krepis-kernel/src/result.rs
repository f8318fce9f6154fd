//! Result codes returned across the C ABI, and [`Failure`], the one error
//! type of the kernel.
//!
//! This module is the bottom of the crate: it imports nothing from it. Every
//! fallible function returns `Result<T, Failure>`; a failure is rendered to
//! text once, at the C boundary (`error::answer`), as its message followed
//! by a `Hint:` line when it has a hint.

use std::fmt;

/// The outcome of a kernel call.
///
/// Values are part of the ABI: a code is never renumbered or reused, even
/// after its variant is retired. New codes take the next free number.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KrepisResult {
    /// The call succeeded; outputs were written.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// A length argument was out of range (see `KREPIS_MAX_REQUEST_LEN`).
    InvalidLength = 2,
    /// The request bytes are not a valid `krepis.v1.Request`.
    MalformedRequest = 3,
    /// The request decoded but names no request kind this kernel knows.
    UnknownRequest = 4,
    /// The request was understood and failed; see `krepis_last_error()`.
    Failed = 5,
    /// The kernel panicked; the panic was caught at the boundary.
    Panic = 6,
    /// A view, journal or transaction handle names nothing live (never
    /// issued, released or closed).
    UnknownHandle = 7,
    /// Another process holds the resource (a project's journal).
    Busy = 8,
    /// This build lacks the capability the request needs (see
    /// `BuildInfo.capabilities`).
    Unsupported = 9,
}

impl KrepisResult {
    /// The code's name as written in krepis.h.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "KREPIS_RESULT_OK",
            Self::NullPointer => "KREPIS_RESULT_NULL_POINTER",
            Self::InvalidLength => "KREPIS_RESULT_INVALID_LENGTH",
            Self::MalformedRequest => "KREPIS_RESULT_MALFORMED_REQUEST",
            Self::UnknownRequest => "KREPIS_RESULT_UNKNOWN_REQUEST",
            Self::Failed => "KREPIS_RESULT_FAILED",
            Self::Panic => "KREPIS_RESULT_PANIC",
            Self::UnknownHandle => "KREPIS_RESULT_UNKNOWN_HANDLE",
            Self::Busy => "KREPIS_RESULT_BUSY",
            Self::Unsupported => "KREPIS_RESULT_UNSUPPORTED",
        }
    }
}

/// A failed request: the result code, what went wrong, and what to do.
///
/// `message` reads `Cannot <action>: <state>` and `hint` is the next step
/// the reader can take, without the `Hint: ` prefix. [`Failure::render`] is
/// the text `krepis_last_error()` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The result code the export returns.
    pub code: KrepisResult,
    /// What could not be done and why (a request's own text may run to more
    /// lines, and [`Failure::with_last_line`] adds one when there is no hint).
    pub message: String,
    /// What to do about it, when the kernel knows.
    pub hint: Option<String>,
}

impl Failure {
    /// A failure with `code` and `message` and no hint.
    pub fn new(code: KrepisResult, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// A failure with `KREPIS_RESULT_FAILED`: the request was understood and
    /// could not be done.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(KrepisResult::Failed, message)
    }

    /// This failure with `hint` as its next step.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// This failure with `line` added as the last line of its text: to the
    /// hint when it has one (so that the rendered text reads the same as
    /// when the line was written after it), else to the message.
    #[must_use]
    #[cfg_attr(not(feature = "journal"), allow(dead_code))] // the journal's commit adds one
    pub fn with_last_line(mut self, line: &str) -> Self {
        let last = self.hint.as_mut().unwrap_or(&mut self.message);
        last.push('\n');
        last.push_str(line);
        self
    }

    /// The text of `krepis_last_error()`: the message, then `\nHint: ` and
    /// the hint when there is one (the loader reads the two apart).
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nHint: {hint}")?;
        }
        Ok(())
    }
}

/// Codes that belonged to retired variants. They are never given to a new
/// variant; add a number here when a variant is removed. (Only the tests
/// read it.)
#[cfg(test)]
pub const RETIRED_CODES: &[u32] = &[];

#[cfg(test)]
mod tests {
    use super::KrepisResult::*;
    use super::{Failure, RETIRED_CODES};

    #[test]
    fn a_failure_renders_its_hint_on_the_next_line() {
        let failure = Failure::failed("Cannot read a: no such file");
        assert_eq!(failure.code, Failed);
        assert_eq!(failure.render(), "Cannot read a: no such file");
        let hinted = Failure::new(Busy, "Cannot open the journal: another process has it open").with_hint("retry");
        assert_eq!(
            hinted.render(),
            "Cannot open the journal: another process has it open\nHint: retry"
        );
        assert_eq!(
            hinted.with_last_line("Transaction 3 is committed").render(),
            "Cannot open the journal: another process has it open\nHint: retry\nTransaction 3 is committed"
        );
        assert_eq!(
            failure.with_last_line("Then this").render(),
            "Cannot read a: no such file\nThen this"
        );
    }

    #[test]
    fn no_variant_takes_a_retired_code() {
        for code in [
            Ok,
            NullPointer,
            InvalidLength,
            MalformedRequest,
            UnknownRequest,
            Failed,
            Panic,
            UnknownHandle,
            Busy,
            Unsupported,
        ] {
            assert!(
                !RETIRED_CODES.contains(&(code as u32)),
                "{} reuses a retired code",
                code.name()
            );
        }
    }

    #[test]
    fn codes_are_never_renumbered() {
        let codes = [
            (Ok, 0),
            (NullPointer, 1),
            (InvalidLength, 2),
            (MalformedRequest, 3),
            (UnknownRequest, 4),
            (Failed, 5),
            (Panic, 6),
            (UnknownHandle, 7),
            (Busy, 8),
            (Unsupported, 9),
        ];
        for (code, value) in codes {
            assert_eq!(code as u32, value, "{} changed its value", code.name());
        }
    }
}
