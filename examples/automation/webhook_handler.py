"""A webhook handler: a small service that starts a rollout run for each inbound event.

    ROLLOUT_URL=http://127.0.0.1:8300 ROLLOUT_KEY=ro_... python3 webhook_handler.py 8080

POST /events with {"id": "...", "question": "..."} answers 202 {"trace_id": ...}. The
event's id is the Idempotency-Key, so a sender that retries (webhooks do) never starts a
second run. Standard library only.
"""

import json
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLLOUT_URL = os.environ["ROLLOUT_URL"].rstrip("/")
ROLLOUT_KEY = os.environ["ROLLOUT_KEY"]


def start_run(event: dict) -> dict:
    body = {
        "env_name": "my-assistant",
        "scenario_name": "answer_question",
        "scenario_args": {"query": event["question"]},
        "model": os.environ.get("ROLLOUT_MODEL", "replay"),
        "validation": [{"answer": "see the trace"}],
        "metadata": {"event_id": event["id"]},
    }
    request = urllib.request.Request(
        f"{ROLLOUT_URL}/v1/agent/run",
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {ROLLOUT_KEY}",
            "Content-Type": "application/json",
            "Idempotency-Key": f"event-{event['id']}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != "/events":
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            event = json.loads(self.rfile.read(length))
            run = start_run(event)
            status, answer = 202, {"trace_id": run["trace_id"], "status": run["status"]}
        except (KeyError, ValueError) as error:
            status, answer = 400, {"error": f"bad event: {error}"}
        except urllib.error.HTTPError as error:
            status, answer = 502, {"error": f"rollout answered {error.code}: {error.read().decode()}"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
