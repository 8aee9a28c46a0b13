"""A Lambda Runtime API emulator for tests: the four endpoints a custom runtime speaks
(docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html), one invocation at a time.

    api = RuntimeApi()            # listens on 127.0.0.1:<free port>; AWS_LAMBDA_RUNTIME_API=api.address
                                  # (one per function process: a stopped one's poll would take the next event)
    answer = api.invoke(event)    # waits for the function's next-invocation poll, returns its response
    api.close()

`invoke` raises InvocationError when the function reports an error (or an init error), and
TimeoutError when it does not answer in time (a hung or dead function).
"""
import http.server
import json
import queue
import sys
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"


class InvocationError(RuntimeError):
    pass


class RuntimeApi:
    def __init__(self):
        self.pending = queue.Queue()  # (request id, event bytes) waiting for the function's poll
        self.results = {}  # request id -> queue.Queue of ("response" | "error", body)
        self.init_error = None
        self.server = _Server(("127.0.0.1", 0), _handler(self))
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event, timeout=120, alive=lambda: True):
        """The function's response to `event`; `alive` says whether its process still runs."""
        request_id = str(uuid.uuid4())
        results = self.results[request_id] = queue.Queue()
        self.pending.put((request_id, json.dumps(event).encode(), timeout))
        deadline = time.time() + timeout
        try:
            while True:
                try:
                    kind, body = results.get(timeout=0.2)
                    break
                except queue.Empty:
                    if self.init_error is not None:
                        raise InvocationError(f"init error: {self.init_error}") from None
                    if not alive():
                        raise InvocationError("the function's process ended without answering") from None
                    if time.time() > deadline:
                        raise TimeoutError(f"no answer within {timeout} s") from None
        finally:
            del self.results[request_id]
        if kind == "error":
            raise InvocationError(body.decode(errors="replace"))
        return json.loads(body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a stopped function's connection
            super().handle_error(request, client_address)


def _handler(api):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the runtime client keeps its connection alive

        def log_message(self, *args):
            pass

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def body(self):
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)

        def do_GET(self):
            if self.path != f"{PREFIX}/invocation/next":
                return self.reply(404)
            request_id, event, timeout = api.pending.get()  # long poll, as Lambda's does
            deadline_ms = int((time.time() + timeout) * 1000)
            self.reply(200, event, [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:sentimiento"),
                ("Lambda-Runtime-Trace-Id", f"Root=1-00000000-{request_id.replace('-', '')[:24]};Sampled=0"),
            ])

        def do_POST(self):
            body = self.body()
            parts = self.path[len(PREFIX):].strip("/").split("/")
            if parts == ["init", "error"]:
                api.init_error = body.decode(errors="replace")
                return self.reply(202)
            if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                results = api.results.get(parts[1])
                if results is None:
                    return self.reply(400, b'{"errorMessage": "unknown request id"}')
                results.put((parts[2], body))
                return self.reply(202)
            self.reply(404)

    return Handler
