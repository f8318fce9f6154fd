//! The control plane in safe Rust: one decoded request in, one response out.

use prost::Message;

use crate::build_info;
use crate::files::{Links, read_whole};
use crate::proto::{BuildInfo, EchoResponse, Request, Response, View, request, response};
use crate::result::{Failure, KrepisResult};
use crate::view;

/// Decodes `bytes` as a `krepis.v1.Request`, handles it and returns the
/// encoded `krepis.v1.Response`.
pub fn handle(bytes: &[u8]) -> Result<Vec<u8>, Failure> {
    let request = Request::decode(bytes).map_err(|err| {
        Failure::new(
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
            return Err(Failure::failed(fail.message));
        }
        Some(request::Kind::ReadFile(read)) => {
            let bytes = read_whole(std::path::Path::new(&read.path), Links::Follow, "file")?;
            response::Kind::View(lend(bytes))
        }
        Some(
            server_request @ (request::Kind::ServerStart(_)
            | request::Kind::ServerStats(_)
            | request::Kind::ServerStop(_)
            | request::Kind::ServerClose(_)),
        ) => server_call(server_request)?,
        Some(journal_request) => journal_call(journal_request)?,
        None => {
            return Err(Failure::new(
                KrepisResult::UnknownRequest,
                "Cannot handle the request: it sets no request kind this kernel knows",
            )
            .with_hint("the caller is newer than the kernel; use a kernel from the same release"));
        }
    };
    Ok(Response { kind: Some(kind) }.encode_to_vec())
}

/// Registers bulk bytes as a view and answers its id and length.
fn lend(bytes: Vec<u8>) -> View {
    let length = bytes.len() as u64;
    View {
        id: view::register(bytes),
        length,
    }
}

/// What this build can do; an API whose capability is missing is refused
/// by the loader before it calls the kernel.
pub const CAPABILITIES: &[&str] = &[
    "view",
    #[cfg(feature = "journal")]
    "journal",
    #[cfg(feature = "server")]
    "server",
];

#[cfg(feature = "journal")]
fn journal_call(kind: request::Kind) -> Result<response::Kind, Failure> {
    use crate::journal;
    use crate::proto::{
        JournalBegun, JournalClosed, JournalForgotten, JournalHistory, JournalOpened, JournalTrackedFiles,
    };
    Ok(match kind {
        request::Kind::JournalOpen(open) => {
            let (journal, root, recovered) = journal::open(&open.root, open.repair)?;
            response::Kind::JournalOpened(JournalOpened {
                journal,
                root,
                recovered,
            })
        }
        request::Kind::JournalClose(close) => response::Kind::JournalClosed(JournalClosed {
            rolled_back: journal::close(close.journal)?,
        }),
        request::Kind::JournalBegin(begin) => {
            let transaction = journal::with(begin.journal, |j| j.begin(&begin.message))?;
            response::Kind::JournalBegun(JournalBegun { transaction })
        }
        request::Kind::JournalTrack(track) => response::Kind::JournalTracked(journal::with(track.journal, |j| {
            j.track(track.transaction, &track.path)
        })?),
        request::Kind::JournalCommit(commit) => {
            response::Kind::JournalCommitted(journal::with(commit.journal, |j| j.commit(commit.transaction))?)
        }
        request::Kind::JournalRollback(rollback) => {
            response::Kind::JournalRestored(journal::with(rollback.journal, |j| {
                journal::restore::rollback(j, rollback.transaction)
            })?)
        }
        request::Kind::JournalHistory(history) => {
            let transactions = journal::with(history.journal, |j| j.history())?;
            response::Kind::JournalHistory(JournalHistory {
                transactions: transactions.iter().map(journal::public).collect(),
            })
        }
        request::Kind::JournalUndo(undo) => {
            let options = journal::restore::UndoOptions {
                steps: undo.steps,
                force: undo.force,
                dry_run: undo.dry_run,
            };
            response::Kind::JournalRestored(journal::with(undo.journal, |j| journal::restore::undo(j, options))?)
        }
        request::Kind::JournalTrackMany(track) => response::Kind::JournalTrackedFiles(JournalTrackedFiles {
            files: journal::with(track.journal, |j| j.track_many(track.transaction, &track.paths))?,
        }),
        request::Kind::JournalForget(forget) => response::Kind::JournalForgotten(JournalForgotten {
            transactions: journal::with(forget.journal, |j| j.forget(forget.keep))?,
        }),
        request::Kind::JournalList(list) => response::Kind::JournalHistory(JournalHistory {
            transactions: journal::list(&list.root)?.iter().map(journal::public).collect(),
        }),
        request::Kind::JournalSnapshot(snapshot) => response::Kind::View(lend(journal::with(snapshot.journal, |j| {
            j.snapshot(snapshot.transaction, &snapshot.path)
        })?)),
        _ => unreachable!("handled by handle()"),
    })
}

#[cfg(not(feature = "journal"))]
fn journal_call(_kind: request::Kind) -> Result<response::Kind, Failure> {
    Err(not_built("the journal"))
}

#[cfg(feature = "server")]
fn server_call(kind: request::Kind) -> Result<response::Kind, Failure> {
    use crate::server;
    Ok(match kind {
        request::Kind::ServerStart(start) => response::Kind::ServerStarted(server::start(&start)?),
        request::Kind::ServerStats(stats) => response::Kind::ServerStats(server::stats(stats.server)?),
        request::Kind::ServerStop(stop) => response::Kind::ServerStats(server::stop(stop.server, stop.grace_ms)?),
        request::Kind::ServerClose(close) => response::Kind::ServerStats(server::close(close.server)?),
        _ => unreachable!("handled by handle()"),
    })
}

#[cfg(not(feature = "server"))]
fn server_call(_kind: request::Kind) -> Result<response::Kind, Failure> {
    Err(not_built("the server engine"))
}

/// The refusal of a capability this build does not have.
#[cfg(any(not(feature = "journal"), not(feature = "server")))]
fn not_built(what: &str) -> Failure {
    Failure::new(
        KrepisResult::Unsupported,
        format!(
            "Cannot use {what}: not available on {} (this kernel was built without it; capabilities: {})",
            build_info::TARGET,
            CAPABILITIES.join(", ")
        ),
    )
    .with_hint("see which targets have which capabilities in the loader's README")
}

fn build_info() -> BuildInfo {
    BuildInfo {
        version: build_info::VERSION.to_owned(),
        target: build_info::TARGET.to_owned(),
        profile: build_info::PROFILE.to_owned(),
        rustc: build_info::RUSTC_VERSION.to_owned(),
        git_commit: build_info::GIT_COMMIT.to_owned(),
        features: build_info::FEATURES.iter().map(|f| (*f).to_owned()).collect(),
        capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
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
        assert_eq!(handle(&request).unwrap_err(), Failure::failed("boom"));
    }

    #[test]
    fn malformed_bytes_are_refused() {
        assert_eq!(
            handle(&[0xff, 0xff, 0xff]).unwrap_err().code,
            KrepisResult::MalformedRequest
        );
    }

    #[test]
    fn empty_request_is_unknown() {
        assert_eq!(handle(&[]).unwrap_err().code, KrepisResult::UnknownRequest);
    }

    #[test]
    fn unknown_field_only_is_unknown() {
        // Field 100, varint 1: a request kind from a newer schema.
        assert_eq!(
            handle(&[0xa0, 0x06, 0x01]).unwrap_err().code,
            KrepisResult::UnknownRequest
        );
    }
}
