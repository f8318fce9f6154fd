//! The control plane in safe Rust: one decoded request in, one response out.

use prost::Message;

use crate::build_info;
use crate::proto::{BuildInfo, EchoResponse, Request, Response, request, response};
use crate::result::KrepisResult;

/// A failed request: the result code and a message for `krepis_last_error()`.
pub type Failure = (KrepisResult, String);

/// Decodes `bytes` as a `krepis.v1.Request`, handles it and returns the
/// encoded `krepis.v1.Response`.
pub fn handle(bytes: &[u8]) -> Result<Vec<u8>, Failure> {
    let request = Request::decode(bytes).map_err(|err| {
        (
            KrepisResult::MalformedRequest,
            format!("Cannot decode the request: it is not a valid krepis.v1.Request ({err})"),
        )
    })?;
    let kind = match request.kind {
        Some(request::Kind::BuildInfo(_)) => response::Kind::BuildInfo(build_info()),
        Some(request::Kind::Echo(echo)) => response::Kind::Echo(EchoResponse { payload: echo.payload }),
        Some(request::Kind::Fail(fail)) => {
            if fail.panic {
                panic!("{}", fail.message);
            }
            return Err((KrepisResult::Failed, fail.message));
        }
        None => {
            return Err((
                KrepisResult::UnknownRequest,
                "Cannot handle the request: it sets no request kind this kernel knows\nHint: the caller is newer than the kernel; use a kernel from the same release".to_owned(),
            ));
        }
    };
    Ok(Response { kind: Some(kind) }.encode_to_vec())
}

fn build_info() -> BuildInfo {
    BuildInfo {
        version: build_info::VERSION.to_owned(),
        target: build_info::TARGET.to_owned(),
        profile: build_info::PROFILE.to_owned(),
        rustc: build_info::RUSTC_VERSION.to_owned(),
        git_commit: build_info::GIT_COMMIT.to_owned(),
        features: build_info::FEATURES.iter().map(|f| (*f).to_owned()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{BuildInfoRequest, EchoRequest, FailRequest};

    fn encode(kind: request::Kind) -> Vec<u8> {
        Request { kind: Some(kind) }.encode_to_vec()
    }

    #[test]
    fn echo_returns_the_payload() {
        let bytes = handle(&encode(request::Kind::Echo(EchoRequest {
            payload: b"abc".to_vec(),
        })))
        .unwrap();
        let response = Response::decode(bytes.as_slice()).unwrap();
        assert_eq!(
            response.kind,
            Some(response::Kind::Echo(EchoResponse {
                payload: b"abc".to_vec()
            }))
        );
    }

    #[test]
    fn build_info_reports_this_build() {
        let bytes = handle(&encode(request::Kind::BuildInfo(BuildInfoRequest {}))).unwrap();
        let Some(response::Kind::BuildInfo(info)) = Response::decode(bytes.as_slice()).unwrap().kind else {
            panic!("expected build info");
        };
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        assert!(!info.target.is_empty());
        assert!(info.rustc.starts_with("rustc "), "{}", info.rustc);
    }

    #[test]
    fn fail_returns_failed_with_the_message() {
        let request = encode(request::Kind::Fail(FailRequest {
            message: "boom".into(),
            panic: false,
        }));
        assert_eq!(handle(&request).unwrap_err(), (KrepisResult::Failed, "boom".to_owned()));
    }

    #[test]
    fn malformed_bytes_are_refused() {
        assert_eq!(
            handle(&[0xff, 0xff, 0xff]).unwrap_err().0,
            KrepisResult::MalformedRequest
        );
    }

    #[test]
    fn empty_request_is_unknown() {
        assert_eq!(handle(&[]).unwrap_err().0, KrepisResult::UnknownRequest);
    }

    #[test]
    fn unknown_field_only_is_unknown() {
        // Field 15, varint 1: a request kind from a newer schema.
        assert_eq!(handle(&[0x78, 0x01]).unwrap_err().0, KrepisResult::UnknownRequest);
    }
}
