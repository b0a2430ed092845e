//! Run callbacks: when a run with a `callback` ends, its summary is POSTed to the callback
//! URL, signed, and retried with exponential backoff; every attempt is logged in the store
//! (`GET /v1/traces/{id}/deliveries`). Delivery runs in a task of the process whose worker
//! finished the run, so it never delays or changes the run; a process that dies meanwhile
//! drops the remaining retries (a manual redelivery sends the summary again).
//!
//! Signature: `X-Rollout-Signature: sha256=<hex>`, the HMAC-SHA256 with the callback's
//! secret over `"{timestamp}.{body}"`, where `timestamp` is the `X-Rollout-Timestamp`
//! header (unix seconds) and `body` the exact request body.
//!
//! Destinations (`destination.rs`): public addresses only unless allowed, checked on the
//! addresses the connection is made to (no DNS rebinding), no proxy, no redirects.

mod destination;

pub use destination::{HostLookup, Refused, SystemLookup};

use hmac::{Hmac, Mac};
use rollout_domain::time::rfc3339_from_ms;
use rollout_domain::{CallbackSpec, new_id};
use rollout_store::{NewDelivery, RunRecord, Store};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How callbacks are delivered.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Allow loopback, private, link-local and other non-public destinations (tests, or a
    /// receiver on the same network). Off by default: a run's callback could otherwise
    /// reach internal services.
    pub allow_private: bool,
    /// The URL users reach the server at, for the summary's `trace_url`.
    pub public_url: Option<String>,
    /// Wait before the first retry; doubled for each further retry.
    pub first_backoff: Duration,
    /// Budget of one attempt (connect, send, read the status).
    pub request_timeout: Duration,
    /// How host names are looked up (the system resolver; tests play DNS rebinding).
    pub lookup: Arc<dyn HostLookup>,
    /// Counts deliveries (`rollout_callback_deliveries_total`).
    pub telemetry: rollout_telemetry::Telemetry,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            public_url: None,
            first_backoff: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
            lookup: Arc::new(SystemLookup),
            telemetry: rollout_telemetry::Telemetry::default(),
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Why a callback URL is refused, or `Ok` when it may be used now: `http`/`https` only,
/// and (unless allowed) a host that resolves only to public addresses. Checked when a run
/// is accepted, for a clear 422; the delivery checks again on every connection.
pub async fn check_destination(url: &str, config: &CallbackConfig) -> Result<(), String> {
    let parsed = destination::check_url(url, config.allow_private).map_err(|e| e.0)?;
    let host = parsed.host_str().unwrap_or_default();
    destination::resolve_checked(&*config.lookup, host, config.allow_private)
        .await
        .map(|_| ())
        .map_err(|e| e.0)
}

/// HMAC-SHA256 (RFC 2104) of `"{timestamp}.{body}"` with `secret`, as lower-case hex.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let message = format!("{timestamp}.{body}");
    hex(&hmac_sha256(secret.as_bytes(), message.as_bytes()))
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length, so `new_from_slice` cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The body POSTed to a callback: the run's summary. No secrets: the callback itself is
/// left out.
pub fn payload(run: &RunRecord, public_url: Option<&str>) -> Value {
    let duration_seconds = match (run.started_at_ms, run.finished_at_ms) {
        (Some(started), Some(ended)) => Some((ended - started) as f64 / 1000.0),
        _ => None,
    };
    json!({
        "event": "run.finished",
        "trace_id": run.id,
        "trace_url": public_url.map(|url| format!("{}/traces/{}", url.trim_end_matches('/'), run.id)),
        "status": run.status,
        "env_name": run.spec.env_name,
        "scenario_name": run.spec.scenario_name,
        "model": run.spec.model,
        "reward": run.reward,
        "final_response": run.final_response,
        "outcome": run.outcome,
        "steps_taken": run.steps,
        "duration_seconds": duration_seconds,
        "error": run.error,
        "metadata": run.spec.metadata,
        "usage": {
            "input_tokens": run.usage.input_tokens,
            "output_tokens": run.usage.output_tokens,
            "total_tokens": run.usage.total(),
        },
        "created_at": rfc3339_from_ms(run.created_at_ms),
        "finished_at": run.finished_at_ms.map(rfc3339_from_ms),
    })
}

/// Delivers callbacks and logs every attempt.
#[derive(Debug, Clone)]
pub struct CallbackDeliverer {
    store: Store,
    config: Arc<CallbackConfig>,
}

impl CallbackDeliverer {
    /// A deliverer writing its log to `store`.
    pub fn new(store: Store, config: CallbackConfig) -> Self {
        Self {
            store,
            config: Arc::new(config),
        }
    }

    /// Delivers the run's summary to its callback: one attempt, then up to the callback's
    /// retries with exponential backoff, until one gets a 2xx. `kind` is logged with each
    /// attempt (`auto` or `manual`). True once delivered; false if every attempt failed or
    /// the run has no callback.
    pub async fn deliver(&self, run: &RunRecord, kind: &str) -> bool {
        let Some(callback) = &run.spec.callback else {
            return false;
        };
        let body = payload(run, self.config.public_url.as_deref()).to_string();
        let resolver = destination::PinnedResolver {
            lookup: self.config.lookup.clone(),
            allow_private: self.config.allow_private,
        };
        // No proxy: it would resolve the name itself, past the check.
        let client = match reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(resolver))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.config.request_timeout)
            .user_agent(concat!("rollout/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(run = %run.id, %error, "could not build the callback client");
                return false;
            }
        };
        let delivery_id = new_id();
        let attempts = 1 + callback.retries();
        let mut backoff = self.config.first_backoff;
        for attempt in 1..=attempts {
            let started = Instant::now();
            let (status_code, error) = self
                .attempt(&client, callback, &body, &delivery_id, attempt)
                .await;
            let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let delivered = error.is_none();
            let record = NewDelivery {
                run_id: run.id.to_string(),
                project_id: run.project_id.clone(),
                attempt: i64::from(attempt),
                kind: kind.to_string(),
                url: callback.url.clone(),
                status_code: status_code.map(i64::from),
                latency_ms,
                error: error.clone(),
            };
            // Counted before the log is written, so that a delivery seen in the log is
            // also in the metrics.
            self.config
                .telemetry
                .metrics()
                .callback_delivery(if delivered { "delivered" } else { "failed" });
            if let Err(store_error) = self.store.record_delivery(&record).await {
                tracing::warn!(run = %run.id, error = %store_error, "could not log a callback delivery");
            }
            if delivered {
                tracing::info!(run = %run.id, attempt, status = ?status_code, "callback delivered");
                return true;
            }
            tracing::warn!(run = %run.id, attempt, error = ?error, "callback attempt failed");
            if attempt < attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        false
    }

    /// One POST. Returns the status (if any) and the error (`None` on a 2xx).
    async fn attempt(
        &self,
        client: &reqwest::Client,
        callback: &CallbackSpec,
        body: &str,
        delivery_id: &str,
        attempt: u32,
    ) -> (Option<u16>, Option<String>) {
        // Names are checked by the client's resolver, on the addresses it connects to.
        if let Err(refused) = destination::check_url(&callback.url, self.config.allow_private) {
            return (None, Some(format!("destination refused: {refused}")));
        }
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let mut request = client
            .post(&callback.url)
            .header("content-type", "application/json")
            .header("x-rollout-timestamp", timestamp.to_string())
            .header("x-rollout-delivery", delivery_id)
            .header("x-rollout-attempt", attempt.to_string());
        if let Some(secret) = &callback.secret {
            request = request.header(
                "x-rollout-signature",
                format!("sha256={}", sign(secret, timestamp, body)),
            );
        }
        for (name, value) in &callback.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match request.body(body.to_string()).send().await {
            Ok(response) if response.status().is_success() => {
                (Some(response.status().as_u16()), None)
            }
            Ok(response) => {
                let status = response.status();
                (
                    Some(status.as_u16()),
                    Some(format!("the receiver answered HTTP {status}")),
                )
            }
            // Without the URL: reqwest's message may repeat it, query string included.
            Err(error) => (None, Some(describe(&error))),
        }
    }
}

/// The error of an attempt for the delivery log: the refusal when the resolver refused
/// the destination, else what failed with its causes.
fn describe(error: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return format!("destination refused: {refused}");
        }
        source = cause.source();
    }
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut message = kind.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_cases() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(sign("Jefe", 1, "x"), hex(&hmac_sha256(b"Jefe", b"1.x")));
    }

    #[tokio::test]
    async fn private_and_odd_destinations_are_refused() {
        let strict = CallbackConfig::default();
        let lenient = CallbackConfig {
            allow_private: true,
            ..CallbackConfig::default()
        };
        for url in [
            "http://127.0.0.1:9/hook",
            "http://10.1.2.3/hook",
            "http://192.168.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/hook",
            "http://[fd00::1]/hook",
            "http://[64:ff9b::a9fe:a9fe]/hook",
            "http://100.64.0.1/hook",
            "http://localhost:9/hook",
        ] {
            assert!(check_destination(url, &strict).await.is_err(), "{url}");
        }
        assert!(
            check_destination("ftp://example.com/x", &lenient)
                .await
                .is_err()
        );
        assert!(check_destination("not a url", &lenient).await.is_err());
        assert!(
            check_destination("http://127.0.0.1:9/hook", &lenient)
                .await
                .is_ok()
        );
        assert!(
            check_destination("https://93.184.215.14/hook", &strict)
                .await
                .is_ok()
        );
    }
}
