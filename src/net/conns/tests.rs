//! The send-stall clock on real time: a body left waiting stalls its connection after
//! its limit (not before), a body taken from regularly or dropped does not.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::body::Frame;

use super::{ConnTable, Sending};

/// A body that always has a byte ready.
struct Endless;

impl hyper::body::Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
    }
}

const LIMIT: Duration = Duration::from_millis(1000);

#[tokio::test]
async fn a_body_never_taken_from_stalls_after_its_limit() {
    let table = ConnTable::new();
    let registered = table.register();
    let slot = Arc::clone(&registered.slot);
    let _body = Sending::new(Endless, slot.busy());
    let started = std::time::Instant::now();
    tokio::time::timeout(5 * LIMIT, slot.send_stalled(LIMIT))
        .await
        .unwrap();
    assert!(started.elapsed() >= LIMIT, "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_body_taken_from_regularly_or_dropped_does_not_stall() {
    let table = ConnTable::new();
    let registered = table.register();
    let slot = Arc::clone(&registered.slot);
    let mut body = Sending::new(Endless, slot.busy());
    let reader = async {
        for _ in 0..30 {
            tokio::time::sleep(LIMIT / 10).await;
            body.frame().await.unwrap().unwrap();
        }
        // Dropped while it waits: the wait ends with it.
        drop(body);
        tokio::time::sleep(3 * LIMIT).await;
    };
    tokio::select! {
        () = slot.send_stalled(LIMIT) => panic!("stalled"),
        () = reader => {}
    }
}
