//! Result codes returned across the C ABI.

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

/// Codes that belonged to retired variants. They are never given to a new
/// variant; add a number here when a variant is removed.
pub const RETIRED_CODES: &[u32] = &[];

#[cfg(test)]
mod tests {
    use super::KrepisResult::*;
    use super::RETIRED_CODES;

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
