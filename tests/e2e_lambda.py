"""End to end through the Lambda emulator: `cargo lambda watch` runs the function, and every
file in events/ is sent with `cargo lambda invoke`; each answer is checked against
tests/events_expected.json (the same expectations tests/events.rs checks in process). Then the
function's output is read as CloudWatch would: its EMF metric records, and the request id on
every request's log line.

    python tests/e2e_lambda.py     # make test runs it with the venv's cargo-lambda on PATH
"""
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPECTED = json.loads((ROOT / "tests/events_expected.json").read_text())
START_TIMEOUT_S = 300  # the first run compiles the function


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def invoke(port, event):
    done = subprocess.run(
        ["cargo", "lambda", "invoke", "sentimiento", "--invoke-port", str(port), "--data-file", str(event)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cargo lambda invoke {event.name} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


def wait_ready(port, watch):
    deadline = time.time() + START_TIMEOUT_S
    while time.time() < deadline:
        if watch.poll() is not None:
            sys.exit(f"cargo lambda watch exited with {watch.returncode}")
        try:
            return invoke(port, ROOT / "events/http-health.json")
        except (RuntimeError, json.JSONDecodeError, subprocess.TimeoutExpired):
            time.sleep(2)
    sys.exit(f"the function did not answer within {START_TIMEOUT_S} s")


def check(event, response):
    door, case = event.stem.split("-", 1)
    want = EXPECTED[case]
    if door == "map":  # a Distributed Map batch: one answer per item
        got = {"outputs": [i.get("output") for i in response], "ids": [i.get("id") for i in response],
               "codes": [i.get("error", {}).get("code") for i in response]}
        return [f"{k} {got[k]} != {want[k]}" for k in ("outputs", "ids", "codes") if got[k] != want[k]]
    body = json.loads(response["body"])
    problems = []
    if response["statusCode"] != want["status"]:
        problems.append(f"status {response['statusCode']} != {want['status']}")
    if "outputs" in want:
        got = [r["output"] for r in body["results"]] if "results" in body else [body.get("output")]
        if got != want["outputs"]:
            problems.append(f"outputs {got} != {want['outputs']}")
    if "code" in want and body.get("error", {}).get("code") != want["code"]:
        problems.append(f"error code {body.get('error')} != {want['code']}")
    return problems


def emf_records(lines):
    """The EMF records among the function's output lines, each checked as CloudWatch reads it:
    every metric named in _aws is a number at the top level, every dimension a string field."""
    records = []
    for line in lines:
        if '"_aws":' not in line:
            continue
        record = json.loads(line[line.find("{"):])
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimension in (d for dims in directive["Dimensions"] for d in dims):
                assert isinstance(record.get(dimension), str), f"dimension {dimension} missing: {record}"
            for metric in directive["Metrics"]:
                assert isinstance(record.get(metric["Name"]), (int, float)), f"no value for {metric}: {record}"
        records.append(record)
    return records


def check_output(log_path, events):
    """Problems with the metrics and logs the function wrote while answering `events`."""
    lines = log_path.read_text(errors="replace").splitlines()
    records = emf_records(lines)
    problems = []
    requests = [r for r in records if "RequestMs" in r]
    if sum(r["ColdStart"] for r in requests) != 1:
        problems.append(f"one cold start expected, got {[r['ColdStart'] for r in requests]}")
    # One record per HTTP event, and one for wait_ready's health check.
    http_events = [e for e in events if not e.name.startswith("map-")]
    if len(requests) != len(http_events) + 1:
        problems.append(f"{len(requests)} request records for {len(http_events)} HTTP events and the readiness check")
    if not any("ModelLoadMs" in r for r in records):
        problems.append("no ModelLoadMs record")
    if not any(r.get("Texts", 0) > 1 for r in records):
        problems.append("no Texts record for a batch")
    codes = {r["ErrorCode"] for r in records if "Errors" in r}
    if "invalid_request" not in codes and "invalid_json" not in codes:
        problems.append(f"no Errors record for the bad requests: {codes}")
    # The first request is wait_ready's health check, which loads nothing: a model_loaded line
    # before it comes from the init phase.
    position = lambda event: next((i for i, l in enumerate(lines) if f'"event":"{event}"' in l), len(lines))
    if position("model_loaded") > position("request"):
        problems.append("the model did not load in the init phase, before the first request")
    logged = [json.loads(l[l.find("{"):]) for l in lines if '"event":"request"' in l]
    if not logged or any(not l.get("span", {}).get("request_id") for l in logged):
        problems.append("a request log line without its request id")
    print(f"EMF: {len(records)} records ({len(requests)} requests, error codes {sorted(codes)}); "
          f"{len(logged)} request log lines, each with its request_id")
    return problems


def main():
    port = free_port()
    # Eager, as template.yaml deploys it: the model loads in the init phase, before the first event.
    env = dict(os.environ, MODEL_DIR=str(ROOT / "tests/fixtures/tiny"),
               ORT_DYLIB_PATH=str(ROOT / "lib/libonnxruntime.so"), SENTIMIENTO_EAGER="1")
    log = open(ROOT / "target/e2e-watch.log", "w")
    watch = subprocess.Popen(["cargo", "lambda", "watch", "--invoke-port", str(port)], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    failed = 0
    try:
        wait_ready(port, watch)
        events = sorted((ROOT / "events").glob("*.json"))
        for event in events:
            problems = check(event, invoke(port, event))
            failed += bool(problems)
            print(f"{'ok  ' if not problems else 'FAIL'} {event.name} {'; '.join(problems)}")
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        watch.wait(timeout=30)
    problems = check_output(ROOT / "target/e2e-watch.log", events)
    for problem in problems:
        print(f"FAIL {problem}")
    failed += len(problems)
    print(f"e2e: {len(events)} events, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
