//! The floor under vaultgate's pass-through: a bare hyper reverse proxy on one
//! current-thread runtime, with none of vaultgate's work (no routing, ids, header
//! hygiene, leak guard, timeouts, metrics or connection limits). Each client
//! connection keeps one upstream connection of its own.
//!
//! `bench/instructions.sh` counts its instructions per request beside vaultgate's, so
//! that the gap between vaultgate and nginx splits into what hyper and the kernel
//! cost and what vaultgate adds. It is a measuring stick, not a proxy to run.
//!
//! `cargo run --release --example hyper_floor -- LISTEN_ADDR UPSTREAM_ADDR`

use std::cell::RefCell;
use std::rc::Rc;

use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

type Upstream = Rc<RefCell<Option<SendRequest<Incoming>>>>;

async fn forward(
    upstream_addr: &'static str,
    upstream: Upstream,
    mut req: Request<Incoming>,
) -> std::io::Result<Response<Incoming>> {
    let idle = upstream.borrow_mut().take();
    let mut sender = match idle {
        Some(sender) => sender,
        None => {
            let tcp = TcpStream::connect(upstream_addr).await?;
            tcp.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .map_err(std::io::Error::other)?;
            tokio::task::spawn_local(conn);
            sender
        }
    };
    let origin_form = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    *req.uri_mut() = Uri::try_from(origin_form).map_err(std::io::Error::other)?;
    // The connection task may not have seen the last response's end yet.
    sender.ready().await.map_err(std::io::Error::other)?;
    let response = sender.send_request(req).await;
    *upstream.borrow_mut() = Some(sender);
    response.map_err(std::io::Error::other)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream_addr)) = (args.next(), args.next()) else {
        eprintln!("usage: hyper_floor LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(2);
    };
    let upstream_addr: &'static str = Box::leak(upstream_addr.into_boxed_str());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::bind(&listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::task::spawn_local(async move {
                let upstream: Upstream = Rc::new(RefCell::new(None));
                let service = service_fn(move |req| forward(upstream_addr, upstream.clone(), req));
                let served = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
                if let Err(e) = served {
                    eprintln!("connection: {e}");
                }
            });
        }
    })
}
