//! Callback delivery against DNS rebinding: a host that resolves to a public address when
//! the run is accepted and to loopback when the callback is sent. The delivery client
//! resolves through the checked resolver, so the second answer is refused, nothing
//! reaches the receiver, and the delivery log says why.

use rollout_domain::{CallbackSpec, RunId, RunSpec};
use rollout_store::Store;
use rollout_worker::{CallbackConfig, CallbackDeliverer, HostLookup, check_destination};
use serde_json::Map;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A resolver that answers `first` once, then `then` for ever (a rebinding DNS server).
#[derive(Debug)]
struct Rebinding {
    first: IpAddr,
    then: IpAddr,
    lookups: AtomicUsize,
}

#[async_trait::async_trait]
impl HostLookup for Rebinding {
    async fn lookup(&self, _host: &str) -> std::io::Result<Vec<IpAddr>> {
        let n = self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(vec![if n == 0 { self.first } else { self.then }])
    }
}

/// A receiver on loopback that answers 200 to every request and counts them.
async fn receiver() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let mut buffer = vec![0u8; 65536];
            let _ = stream.read(&mut buffer).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    (port, received)
}

async fn store_with_run(url: &str) -> (tempfile::TempDir, Store, rollout_store::RunRecord) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("db").display()))
        .await
        .unwrap();
    store.ensure_project("p", "p").await.unwrap();
    let spec = RunSpec {
        env_name: "env".into(),
        env_version: 1,
        scenario_name: "scenario".into(),
        scenario_args: Map::new(),
        model: "replay".into(),
        max_steps: 1,
        system_prompt: None,
        validation: Vec::new(),
        metadata: Map::new(),
        agent_timeout_seconds: 60,
        grading_timeout_seconds: 30,
        max_total_tokens: None,
        max_cost_usd: None,
        key_id: None,
        traceparent: None,
        callback: Some(CallbackSpec {
            url: url.into(),
            headers: BTreeMap::new(),
            secret: None,
            retry_count: Some(0),
        }),
    };
    let run = store
        .insert_run(&RunId::generate(), "p", &spec)
        .await
        .unwrap();
    (dir, store, run)
}

fn config(lookup: Arc<dyn HostLookup>, allow_private: bool) -> CallbackConfig {
    let _ = rustls::crypto::ring::default_provider().install_default();
    CallbackConfig {
        allow_private,
        first_backoff: Duration::from_millis(10),
        request_timeout: Duration::from_secs(10),
        lookup,
        ..CallbackConfig::default()
    }
}

#[tokio::test]
async fn a_callback_host_rebound_to_loopback_after_the_check_is_refused() {
    let (port, received) = receiver().await;
    let url = format!("http://rebind.test:{port}/hook");
    let (_dir, store, run) = store_with_run(&url).await;
    let lookup = Arc::new(Rebinding {
        first: "93.184.215.14".parse().unwrap(),
        then: "127.0.0.1".parse().unwrap(),
        lookups: AtomicUsize::new(0),
    });
    let config = config(lookup.clone(), false);

    // When the run is accepted, the host is public.
    check_destination(&url, &config).await.unwrap();
    // When the callback is sent, it is loopback: refused at the connection.
    let deliverer = CallbackDeliverer::new(store.clone(), config);
    assert!(!deliverer.deliver(&run, "auto").await);
    assert_eq!(
        received.load(Ordering::SeqCst),
        0,
        "the receiver was reached"
    );
    assert_eq!(
        lookup.lookups.load(Ordering::SeqCst),
        2,
        "one lookup per connection"
    );
    let log = store.list_deliveries("p", run.id.as_str()).await.unwrap();
    assert_eq!(log.len(), 1);
    let error = log[0].error.as_deref().unwrap();
    assert!(
        error.starts_with(
            "destination refused: 'rebind.test' resolves to 127.0.0.1, a loopback address"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn the_same_delivery_reaches_the_receiver_when_private_destinations_are_allowed() {
    // The control: the name, the resolver and the receiver work; only the check refused.
    let (port, received) = receiver().await;
    let url = format!("http://rebind.test:{port}/hook");
    let (_dir, store, run) = store_with_run(&url).await;
    let lookup = Arc::new(Rebinding {
        first: "127.0.0.1".parse().unwrap(),
        then: "127.0.0.1".parse().unwrap(),
        lookups: AtomicUsize::new(0),
    });
    let deliverer = CallbackDeliverer::new(store.clone(), config(lookup, true));
    assert!(deliverer.deliver(&run, "auto").await);
    assert_eq!(received.load(Ordering::SeqCst), 1);
    let log = store.list_deliveries("p", run.id.as_str()).await.unwrap();
    assert_eq!(log[0].status_code, Some(200));
}

#[tokio::test]
async fn nat64_and_mapped_loopback_names_are_refused_too() {
    for address in ["64:ff9b::7f00:1", "::ffff:127.0.0.1", "169.254.169.254"] {
        let ip: IpAddr = address.parse().unwrap();
        let lookup = Arc::new(Rebinding {
            first: ip,
            then: ip,
            lookups: AtomicUsize::new(0),
        });
        let refused = check_destination("http://sneaky.test/hook", &config(lookup, false)).await;
        assert!(refused.is_err(), "{address}");
    }
}
