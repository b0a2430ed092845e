#!/bin/sh
# A nightly check from cron, one run per day however often cron (or a retry) starts it:
#   0 2 * * *  ROLLOUT_URL=http://127.0.0.1:8300 ROLLOUT_KEY=ro_... /path/to/nightly.sh
# The Idempotency-Key names the day, so a second start the same day gets the same run.
set -eu
day="${NIGHTLY_DAY:-$(date -u +%Y-%m-%d)}"   # NIGHTLY_DAY=YYYY-MM-DD to re-run a given day
curl -fsS -X POST "$ROLLOUT_URL/v1/agent/run" \
  -H "Authorization: Bearer $ROLLOUT_KEY" \
  -H "Content-Type: application/json" \
  -H "Idempotency-Key: nightly-$day" \
  -d '{"env_name": "my-assistant", "scenario_name": "answer_question",
       "scenario_args": {"query": "What is 17 * 23?"}, "model": "replay",
       "validation": [{"name": "calculator", "arguments": {"expression": "17 * 23"}},
                      {"answer": "17 * 23 = 391"}],
       "sync": true, "timeout": 300}'
