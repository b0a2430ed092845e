//! Reads the task lifecycle off a hud 0.6 client's control connection that the server
//! splices to an environment (`/runtime/tunnels/{id}`), so that each task the client plays
//! is recorded like a gateway session: `hello` → connected, `tasks.start` and its reply →
//! setup, `tasks.grade` → the answer, its reply → the evaluation. The bytes themselves pass
//! unchanged; a connection whose first frame is `tunnel.open` (a capability stream) or that
//! sends a line over the frame limit is not read further.

use super::control::{FRAME_LIMIT, reply_result};
use super::wire;
use crate::gateway::{GatewayEvent, GatewayHook};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// What a connection turned out to be.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Unknown,
    Control,
    /// A capability tunnel, or a stream no longer read.
    Opaque,
}

/// A request waiting for its reply.
enum Pending {
    Hello,
    Start {
        task: String,
        arguments: Map<String, Value>,
        at: Instant,
    },
    Grade {
        at: Instant,
    },
}

/// One spliced connection's reader.
pub struct ControlSniffer {
    hook: Arc<dyn GatewayHook>,
    kind: Kind,
    from_client: Vec<u8>,
    from_env: Vec<u8>,
    pending: HashMap<String, Pending>,
    opened: Instant,
}

impl ControlSniffer {
    /// A reader reporting to `hook`.
    pub fn new(hook: Arc<dyn GatewayHook>) -> Self {
        Self {
            hook,
            kind: Kind::Unknown,
            from_client: Vec::new(),
            from_env: Vec::new(),
            pending: HashMap::new(),
            opened: Instant::now(),
        }
    }

    /// Bytes the client sent.
    pub fn client_bytes(&mut self, bytes: &[u8]) {
        for frame in self.frames(bytes, true) {
            self.client_frame(&frame);
        }
    }

    /// Bytes the environment sent.
    pub fn env_bytes(&mut self, bytes: &[u8]) {
        for frame in self.frames(bytes, false) {
            self.env_frame(&frame);
        }
    }

    /// Complete lines in the direction's buffer, parsed (lines that are not JSON skipped).
    fn frames(&mut self, bytes: &[u8], client: bool) -> Vec<Value> {
        if self.kind == Kind::Opaque {
            return Vec::new();
        }
        let buffer = if client {
            &mut self.from_client
        } else {
            &mut self.from_env
        };
        buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if let Ok(frame) = serde_json::from_slice::<Value>(&line) {
                frames.push(frame);
            }
        }
        if buffer.len() as u64 > FRAME_LIMIT {
            self.kind = Kind::Opaque;
            self.from_client = Vec::new();
            self.from_env = Vec::new();
            return Vec::new();
        }
        frames
    }

    fn client_frame(&mut self, frame: &Value) {
        let method = frame.get("method").and_then(Value::as_str).unwrap_or("");
        if self.kind == Kind::Unknown {
            self.kind = if method == "tunnel.open" {
                Kind::Opaque
            } else {
                Kind::Control
            };
        }
        if self.kind != Kind::Control {
            return;
        }
        let Some(id) = frame.get("id").map(Value::to_string) else {
            return;
        };
        let params = frame.get("params").cloned().unwrap_or(Value::Null);
        match method {
            "hello" => {
                self.pending.insert(id, Pending::Hello);
            }
            "tasks.start" => {
                let task = params.get("id").and_then(Value::as_str).unwrap_or("");
                let arguments = params
                    .get("args")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                self.pending.insert(
                    id,
                    Pending::Start {
                        task: task.to_string(),
                        arguments,
                        at: Instant::now(),
                    },
                );
            }
            "tasks.grade" => {
                let answer = match params.get("answer") {
                    Some(Value::String(text)) => text.clone(),
                    None | Some(Value::Null) => String::new(),
                    Some(other) => other.to_string(),
                };
                self.hook.record(GatewayEvent::Submitted { answer });
                self.pending
                    .insert(id, Pending::Grade { at: Instant::now() });
            }
            _ => {}
        }
    }

    fn env_frame(&mut self, frame: &Value) {
        if self.kind != Kind::Control {
            return;
        }
        let Some(id) = frame.get("id").map(Value::to_string) else {
            return;
        };
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        let result = reply_result(frame);
        match (pending, result) {
            (Pending::Hello, Ok(hello)) => self.hook.record(GatewayEvent::Connected {
                client_name: "hud 0.6".into(),
                server_name: hello
                    .pointer("/env/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                duration_ms: elapsed_ms(self.opened),
            }),
            (
                Pending::Start {
                    task,
                    arguments,
                    at,
                },
                Ok(start),
            ) => self.hook.record(GatewayEvent::Setup {
                scenario_id: task,
                arguments,
                prompt: wire::prompt_text(&start),
                tools: Vec::new(),
                duration_ms: elapsed_ms(at),
            }),
            (Pending::Grade { at }, Ok(grade)) => match wire::evaluation(&grade) {
                Ok(evaluation) => self.hook.record(GatewayEvent::Evaluated {
                    scenario_id: String::new(),
                    evaluation,
                    duration_ms: elapsed_ms(at),
                }),
                Err(message) => self.hook.record(GatewayEvent::EvaluationFailed {
                    scenario_id: String::new(),
                    message,
                }),
            },
            (Pending::Grade { .. }, Err(error)) => {
                self.hook.record(GatewayEvent::EvaluationFailed {
                    scenario_id: String::new(),
                    message: error.to_string(),
                })
            }
            (Pending::Hello | Pending::Start { .. }, Err(_)) => {}
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Events(Mutex<Vec<GatewayEvent>>);

    impl GatewayHook for Events {
        fn record(&self, event: GatewayEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    #[test]
    fn a_played_task_becomes_setup_answer_and_evaluation() {
        let events = Arc::new(Events::default());
        let mut sniffer = ControlSniffer::new(events.clone());
        sniffer
            .client_bytes(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"hello\",\"params\":{}}\n");
        sniffer.env_bytes(b"{\"id\":1,\"result\":{\"env\":{\"name\":\"e\"},\"bindings\":[]}}\n");
        // Split frames are put back together.
        sniffer.client_bytes(b"{\"id\":2,\"method\":\"tasks.start\",");
        sniffer.client_bytes(b"\"params\":{\"id\":\"add\",\"args\":{\"a\":1}}}\n");
        sniffer.env_bytes(b"{\"id\":2,\"result\":{\"prompt\":\"Add.\"}}\n");
        sniffer
            .client_bytes(b"{\"id\":3,\"method\":\"tasks.grade\",\"params\":{\"answer\":\"3\"}}\n");
        sniffer.env_bytes(b"{\"id\":3,\"result\":{\"score\":1.0}}\n");
        let events = events.0.lock().unwrap();
        assert!(
            matches!(&events[0], GatewayEvent::Connected { server_name, .. } if server_name == "e")
        );
        assert!(
            matches!(&events[1], GatewayEvent::Setup { scenario_id, prompt, .. } if scenario_id == "add" && prompt == "Add.")
        );
        assert!(matches!(&events[2], GatewayEvent::Submitted { answer } if answer == "3"));
        assert!(
            matches!(&events[3], GatewayEvent::Evaluated { evaluation, .. } if evaluation.reward == 1.0)
        );
    }

    #[test]
    fn tunnels_are_not_read() {
        let events = Arc::new(Events::default());
        let mut sniffer = ControlSniffer::new(events.clone());
        sniffer.client_bytes(
            b"{\"id\":1,\"method\":\"tunnel.open\",\"params\":{\"capability\":\"tools\"}}\n",
        );
        sniffer.client_bytes(b"{\"id\":2,\"method\":\"tasks.grade\",\"params\":{}}\n");
        assert!(events.0.lock().unwrap().is_empty());
    }
}
