"""Runs moto's AWS emulator on 127.0.0.1 on a free port for baton's tests and demo.

Prints `PORT <n>` once it listens, then serves until its standard input closes, which happens
when the process that started it exits, however it exits. So no emulator outlives its test run.
"""
import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


class OneDynamoRequestAtATime:
    """Makes each DynamoDB request atomic, as DynamoDB is. moto's TransactWriteItems snapshots
    whole tables and restores the snapshot when a condition fails, which, with requests served
    on parallel threads, silently undoes other requests' writes. Other services stay parallel
    (SQS long polls must not block DynamoDB).

    Step Functions' StartExecution is made atomic the same way: Step Functions keeps an
    execution name unique per state machine, while moto looks for the name and then appends the
    execution, so two concurrent starts on parallel threads could both append."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target.startswith("DynamoDB_") or target == "AWSStepFunctions.StartExecution":
            with self.lock:
                # Consume the whole response inside the lock.
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main() -> None:
    app = OneDynamoRequestAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"PORT {server.server_port}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
