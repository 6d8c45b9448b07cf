//! Operator round 6, on the real binary: a second instance started on a port a
//! running one listens on exits instead of sharing the port, and a database that
//! stops answering (frozen through a TCP proxy this test controls; the shared test
//! cluster is never stopped) gets tokenizing requests a 503 in bounded time, with
//! nothing forwarded, and service back by itself once it answers again. A refused
//! reload names its file; a start whose schema migration waits on a lock fails in
//! bounded time; a shutdown drains for the configured `drain_timeout_ms`; a
//! stray SIGUSR2 is ignored, SIGQUIT stops gracefully, and a SIGHUP while the keyring
//! unseals does not end the process.

use std::net::SocketAddr;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::json;
use vaultgate::demo::echo::EchoUpstream;

use crate::common::binary::{VaultDir, free_port, wait_listening};
use crate::common::*;

const CARD: &str = "4242424242424242";
const OTHER_CARD: &str = "4111111111111111";

/// An upstream and a route that tokenizes `card` in a JSON body.
fn card_route(up: SocketAddr) -> String {
    format!(
        "[[upstreams]]\nname = \"backend\"\nurl = \"http://{up}\"\n\
         [[routes]]\nname = \"cards\"\nupstream = \"backend\"\nmethod = \"POST\"\n\
         path = \"/cards\"\nfields = [{{ path = \"card\", class = \"pan\" }}]\n"
    )
}

fn card_request(proxy: SocketAddr, card: &str) -> Request<Full<Bytes>> {
    Request::post(url(proxy, "/cards"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(json!({ "card": card }).to_string())))
        .unwrap()
}

fn stop(mut child: Child) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// With `workers` threads each binding the proxy port with `SO_REUSEPORT`, a second
/// `vaultgate serve` given the same `proxy.listen` (another store, by mistake) used
/// to start and take part of the connections into its own vault. It must exit with
/// the bind error, as it does for the API port, and the first one serve on.
#[tokio::test]
async fn a_second_instance_on_a_port_in_use_exits_instead_of_sharing_it() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let first = VaultDir::init();
    let (proxy, api_addr) = (free_port(), free_port());
    let config = first.write_config(proxy, api_addr, &card_route(up));
    let mut running = first.serve(&config);
    wait_listening(&mut running, proxy, Duration::from_secs(20)).await;

    let second = VaultDir::init();
    let other_api = free_port();
    let config = second.write_config(proxy, other_api, &card_route(up));
    let mut child = second.serve(&config);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if tokio::net::TcpStream::connect(other_api).await.is_ok() {
            stop(child);
            stop(running);
            panic!(
                "a second instance serves on {proxy}, which another one listens on:\n{}",
                second.serve_log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the second instance neither exits nor serves"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = second.serve_log();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("proxy.listen: bind {proxy}")) && log.contains("in use"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    // The first instance was never disturbed.
    let r = send(&http1(), card_request(proxy, CARD)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(echo.received().len(), 1);
    stop(running);
    echo.stop().await;
}

/// A TCP proxy to `target` that can freeze: while `frozen`, bytes read either way
/// are held (the connections stay open, new ones are accepted), as with a database
/// that hangs or a network path that drops packets; thawed, they flow on.
async fn freezable_proxy(target: SocketAddr, frozen: Arc<AtomicBool>) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        frozen: Arc<AtomicBool>,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            while frozen.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let frozen = Arc::clone(&frozen);
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let (ir, iw) = inbound.into_split();
                let (or, ow) = outbound.into_split();
                tokio::join!(
                    pump(ir, ow, Arc::clone(&frozen)),
                    pump(or, iw, Arc::clone(&frozen))
                );
            });
        }
    });
    addr
}

async fn wait_for(what: &str, patience: Duration, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !ok().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A database that stops answering used to hold every tokenizing request (and its
/// pooled connection) until the client gave up: no timeout covered a statement.
/// Now each store operation is bounded (`vault.postgres_timeout_ms`, default 5 s,
/// left at its default here): the request gets 503 `store_unavailable`, nothing
/// reaches the upstream, `/readyz` turns 503, and once the database answers again
/// the same process tokenizes and reveals the token issued before the freeze.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_database_is_a_503_in_bounded_time_and_service_comes_back() {
    let Some(pg) = PgSchema::new().await else {
        eprintln!("skipped: VAULTGATE_TEST_POSTGRES_URL not set");
        return;
    };
    let frozen = Arc::new(AtomicBool::new(false));
    let via = freezable_proxy(pg.server, Arc::clone(&frozen)).await;
    let url = pg.url_via(via, "");

    let (up, echo) = EchoUpstream::start().await.unwrap();
    let vd = VaultDir::init();
    let (proxy, api_addr) = (free_port(), free_port());
    let svc = api_client("svc", "reveal = [\"pan\"]");
    let config = vd.write_config(proxy, api_addr, &format!("{}{}", card_route(up), svc.toml));
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "store = \"sled\"\n",
        &format!("store = \"postgres\"\npostgres_url = \"{url}\"\n"),
    );
    std::fs::write(&config, text).unwrap();
    let mut server = vd.serve(&config);
    wait_listening(&mut server, proxy, Duration::from_secs(20)).await;
    wait_listening(&mut server, api_addr, Duration::from_secs(20)).await;
    let ready = async || {
        call(api_addr, "GET", "/readyz", None, serde_json::Value::Null)
            .await
            .status
    };

    let r = send(&http1(), card_request(proxy, CARD)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", vd.serve_log());
    let before: serde_json::Value = serde_json::from_slice(&echo.received()[0].body).unwrap();
    let token = before["card"].as_str().unwrap().to_owned();
    assert_ne!(token, CARD);

    frozen.store(true, Ordering::SeqCst);
    // Far above the 5 s bound, far below "until the client gives up".
    let reply = tokio::time::timeout(
        Duration::from_secs(25),
        send(&http1(), card_request(proxy, OTHER_CARD)),
    )
    .await;
    let Ok(reply) = reply else {
        frozen.store(false, Ordering::SeqCst);
        stop(server);
        panic!("a tokenizing request hung on a frozen database for 25 s");
    };
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code(&reply), "store_unavailable");
    assert_eq!(echo.received().len(), 1, "forwarded without a stored token");
    wait_for("503 on /readyz", Duration::from_secs(15), async || {
        ready().await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;

    frozen.store(false, Ordering::SeqCst);
    wait_for("200 on /readyz", Duration::from_secs(20), async || {
        ready().await == StatusCode::OK
    })
    .await;
    let r = send(&http1(), card_request(proxy, OTHER_CARD)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", vd.serve_log());
    assert_eq!(echo.received().len(), 2);
    let r = api(
        api_addr,
        "POST",
        "/v1/detokenize",
        &svc.key,
        json!({ "tokens": [token] }),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["results"][0]["value"], CARD);

    let log = vd.serve_log();
    stop(server);
    assert!(log.contains("the database did not answer in time"), "{log}");
    assert!(!log.contains(CARD) && !log.contains(OTHER_CARD), "{log}");
    echo.stop().await;
    pg.admin
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", pg.schema))
        .await
        .unwrap();
}

/// A session that holds a lock the start's schema migration needs (a stuck
/// instance mid-migration, a DBA's open transaction on the migrations table) used to
/// hold the start for good: nothing bounded the migration. It is one store operation
/// now, bounded by `vault.postgres_timeout_ms`: the start fails in that time with a
/// line that says what to look for, and starts once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_held_by_a_lock_fails_the_start_in_bounded_time() {
    let Some(pg) = PgSchema::new().await else {
        eprintln!("skipped: VAULTGATE_TEST_POSTGRES_URL not set");
        return;
    };
    // The schema's own migrations table, locked in an open transaction (the
    // advisory lock is database-wide and would hold up other tests' vaults).
    let table = format!("{}.vaultgate_schema_migrations", pg.schema);
    pg.admin
        .batch_execute(&format!(
            "CREATE TABLE {table} (version bigint PRIMARY KEY, name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now()); \
             BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();

    let (up, echo) = EchoUpstream::start().await.unwrap();
    let vd = VaultDir::init();
    let (proxy, api_addr) = (free_port(), free_port());
    let config = vd.write_config(proxy, api_addr, &card_route(up));
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "store = \"sled\"\n",
        &format!(
            "store = \"postgres\"\npostgres_url = \"{}\"\npostgres_timeout_ms = 2000\n",
            pg.url_via(pg.server, "")
        ),
    );
    std::fs::write(&config, text).unwrap();
    let started = Instant::now();
    let mut server = vd.serve(&config);
    let exited = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(20) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(status) = exited else {
        stop(server);
        pg.admin.batch_execute("COMMIT").await.unwrap();
        panic!("the start hung on a locked migration for 20 s");
    };
    assert!(!status.success());
    let log = vd.serve_log();
    assert!(
        log.contains("the schema migration did not finish within 2000 ms"),
        "{log}"
    );

    pg.admin.batch_execute("COMMIT").await.unwrap();
    let mut server = vd.serve(&config);
    wait_listening(&mut server, proxy, Duration::from_secs(20)).await;
    let r = send(&http1(), card_request(proxy, CARD)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", vd.serve_log());
    stop(server);
    echo.stop().await;
    pg.admin
        .batch_execute(&format!("DROP SCHEMA {} CASCADE", pg.schema))
        .await
        .unwrap();
}

/// [`card_route`] plus a pass-through route on `/pass/*` (and `extra` routes).
fn routes_with_pass(up: SocketAddr, extra: &str) -> String {
    format!(
        "{}[[routes]]\nname = \"pass\"\nupstream = \"backend\"\npath = \"/pass/*\"\n{extra}",
        card_route(up)
    )
}

/// SIGHUP under a steady loop of tokenizing and pass-through requests on the real
/// binary: a file with an unknown key and one that does not parse are refused with
/// an ERROR line that names the file (it used to name only the key or line, not
/// which file the process had re-read) and the key, the gauge says the last reload
/// failed, and a good file then applies a new route. No request fails throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reload_under_load_names_the_file_and_the_key() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let vd = VaultDir::init();
    let (proxy, api_addr) = (free_port(), free_port());
    let good = routes_with_pass(up, "");
    let config = vd.write_config(proxy, api_addr, &good);
    let mut server = vd.serve(&config);
    wait_listening(&mut server, proxy, Duration::from_secs(20)).await;
    wait_listening(&mut server, api_addr, Duration::from_secs(20)).await;

    let stop_load = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    for task in 0..2 {
        let stop_load = Arc::clone(&stop_load);
        loops.push(tokio::spawn(async move {
            let client = http1();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop_load.load(Ordering::Relaxed) {
                let req = if task == 0 {
                    card_request(proxy, CARD)
                } else {
                    Request::get(url(proxy, "/pass/x"))
                        .body(Full::new(Bytes::new()))
                        .unwrap()
                };
                match client.request(req).await {
                    Ok(res) if res.status() == StatusCode::OK => {
                        let _ = http_body_util::BodyExt::collect(res.into_body()).await;
                        ok += 1;
                    }
                    Ok(res) => failed.push(res.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }
    let metrics = async || {
        let r = call(api_addr, "GET", "/metrics", None, serde_json::Value::Null).await;
        String::from_utf8(r.body.to_vec()).unwrap()
    };
    let pid = server.id().to_string();
    let hup = |text: String| {
        std::fs::write(&config, text).unwrap();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap();
        assert!(status.success());
    };
    let refusals = || {
        vd.serve_log()
            .lines()
            .filter(|l| l.contains("config reload refused"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let text = std::fs::read_to_string(&config).unwrap();
    let file = path_str(&config);

    // An unknown key in [limits].
    hup(text.replace(
        "[[upstreams]]",
        "[limits]\nmax_body_byte = 10\n[[upstreams]]",
    ));
    wait_for("the first refusal", Duration::from_secs(10), async || {
        refusals().len() == 1
    })
    .await;
    // A line that does not parse.
    hup(format!("{text}\nthis is = = broken\n"));
    wait_for("the second refusal", Duration::from_secs(10), async || {
        refusals().len() == 2
    })
    .await;
    let lines = refusals();
    assert!(
        lines[0].contains(&file) && lines[0].contains("limits.max_body_byte"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(&file) && lines[1].contains("line"),
        "{}",
        lines[1]
    );
    let m = metrics().await;
    assert!(m.contains("vaultgate_config_last_reload_success 0"), "{m}");
    assert!(m.contains("vaultgate_config_generation 1\n"), "{m}");

    // A good file with a new route applies.
    let fresh = "[[routes]]\nname = \"fresh\"\nupstream = \"backend\"\npath = \"/fresh/*\"\n";
    let new = vd.write_config(proxy, api_addr, &routes_with_pass(up, fresh));
    assert_eq!(new, config);
    hup(std::fs::read_to_string(&config).unwrap());
    wait_for("the good reload", Duration::from_secs(10), async || {
        metrics()
            .await
            .contains("vaultgate_config_last_reload_success 1")
    })
    .await;
    stop_load.store(true, Ordering::Relaxed);
    let mut total = 0;
    for l in loops {
        let (ok, failed) = l.await.unwrap();
        assert!(
            failed.is_empty(),
            "requests failed across reloads: {failed:?}"
        );
        total += ok;
    }
    assert!(total > 0);
    let r = send(
        &http1(),
        Request::get(url(proxy, "/fresh/a"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let log = vd.serve_log();
    stop(server);
    assert!(!log.contains(CARD), "{log}");
    echo.stop().await;
}

/// `drain_timeout_ms` bounds a shutdown: a request stuck on an upstream that never
/// answers (and an upstream timeout far longer) holds SIGTERM for the drain period
/// the operator chose, not for the built-in 30 s, and the process still exits 0
/// (after flushing its store). An orchestrator's grace period (Kubernetes,
/// `TimeoutStopSec=`) has to cover this figure, so it has to be settable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_drain_timeout_bounds_the_shutdown() {
    use tokio::io::AsyncReadExt as _;
    // An upstream that reads the request and never answers.
    let stuck = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = stuck.local_addr().unwrap();
    let (got, mut got_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = stuck.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let _ = got.send(());
                }
            });
        }
    });
    let v = VaultDir::init();
    let (proxy, api_addr) = (free_port(), free_port());
    let routes = format!(
        "[limits]\nupstream_timeout_ms = 120000\n\
         [[upstreams]]\nname = \"stuck\"\nurl = \"http://{up}\"\n\
         [[routes]]\nname = \"pass\"\nupstream = \"stuck\"\nmethod = \"*\"\npath = \"/pass/*\"\n"
    );
    let config = v.write_config(proxy, api_addr, &routes);
    let text = std::fs::read_to_string(&config).unwrap();
    let listen = format!("listen = \"{proxy}\"\n");
    std::fs::write(
        &config,
        text.replacen(&listen, &format!("{listen}drain_timeout_ms = 500\n"), 1),
    )
    .unwrap();
    let mut child = v.serve(&config);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;

    let client = tokio::spawn(async move {
        let req = Request::get(url(proxy, "/pass/slow"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        http1().request(req).await.map(|r| r.status())
    });
    tokio::time::timeout(Duration::from_secs(20), got_rx.recv())
        .await
        .expect("the request never reached the upstream")
        .unwrap();

    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let signalled = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(20) {
            stop(child);
            panic!(
                "still draining {:?} after SIGTERM with drain_timeout_ms = 500:\n{}",
                signalled.elapsed(),
                v.serve_log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}\n{}", v.serve_log());
    assert!(
        took >= Duration::from_millis(400),
        "exited after {took:?}: the request in flight got no drain at all"
    );
    // The stuck request was cut off, not answered by the upstream.
    let answer = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .expect("the client still waits")
        .unwrap();
    assert!(
        answer.as_ref().map_or(true, |s| s.is_server_error()),
        "{answer:?}"
    );
    // The operator is told why a request was cut off.
    assert!(
        v.serve_log()
            .contains("grace period over; dropping connections"),
        "{}",
        v.serve_log()
    );
}

/// A stray SIGUSR2 (a script written for another daemon) used to end the process at
/// once, its default action: no drain, no flush. It is logged and ignored, and the
/// proxy serves on; SIGQUIT then stops it gracefully, as SIGTERM does.
#[tokio::test]
async fn a_stray_sigusr2_is_ignored_and_sigquit_stops_gracefully() {
    let (up, echo) = EchoUpstream::start().await.unwrap();
    let v = VaultDir::init();
    let (proxy, api_addr) = (free_port(), free_port());
    let config = v.write_config(proxy, api_addr, &card_route(up));
    let mut child = v.serve(&config);
    wait_listening(&mut child, proxy, Duration::from_secs(20)).await;
    let pid = child.id().to_string();
    let signal = |sig: &str| {
        let sent = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    };

    signal("-USR2");
    wait_for("the SIGUSR2 warning", Duration::from_secs(10), async || {
        v.serve_log().contains("SIGUSR2 ignored")
    })
    .await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGUSR2 ended the process:\n{}",
        v.serve_log()
    );
    let r = send(&http1(), card_request(proxy, CARD)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(echo.received().len(), 1);

    signal("-QUIT");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGQUIT did not stop it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}\n{}", v.serve_log());
    echo.stop().await;
}

/// Whether the process `pid` catches signal number `signo` (its `SigCgt` mask).
fn catches(pid: u32, signo: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signo - 1)) != 0)
}

/// A SIGHUP (a config push, `systemctl reload` right after a start) that arrived
/// while the keyring unsealed used to end the process: its handler was installed
/// only once the server served, and argon2 takes a second or more before that. It
/// is caught from before the unseal, and the server comes up and serves.
#[tokio::test]
async fn a_sighup_while_the_keyring_unseals_does_not_end_the_process() {
    const SIGHUP: u32 = 1;
    let (up, echo) = EchoUpstream::start().await.unwrap();
    // A keyring whose unseal takes a while: argon2 at 64 MiB and 2 passes.
    let v = VaultDir::init_with_kdf("sled", 65536, 2);
    let (proxy, api_addr) = (free_port(), free_port());
    let config = v.write_config(proxy, api_addr, &card_route(up));
    let mut child = v.serve(&config);
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !catches(pid, SIGHUP) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited: {}",
            v.serve_log()
        );
        assert!(Instant::now() < deadline, "SIGHUP never caught");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Caught while the keyring is still unsealing: nothing listens yet.
    assert!(
        tokio::net::TcpStream::connect(proxy).await.is_err(),
        "SIGHUP was caught only once the proxy listened"
    );
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_listening(&mut child, proxy, Duration::from_secs(30)).await;
    let r = send(&http1(), card_request(proxy, CARD)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(echo.received().len(), 1);
    stop(child);
    echo.stop().await;
}
