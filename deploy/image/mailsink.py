"""The project's development SMTP sink (messaging.sink), listening on every
interface: in compose the worker reaches it by service name, which the
sink's own 127.0.0.1 does not allow. Prints each message (the verification
code with it) to the container's log, like scripts/serve.

    python /app/mailsink.py          # port: MAILSINK_PORT (1025)

Only in the image's `mailsink` target (aiosmtpd is a development dependency,
not in requirements/prod.txt).
"""

import os
import signal
import threading

from aiosmtpd.controller import Controller

from messaging.sink import SinkHandler


def main() -> None:
    port = int(os.environ.get("MAILSINK_PORT", "1025"))
    store = os.environ.get("MAILSINK_STORE") or None
    controller = Controller(SinkHandler(store=store, echo=True), hostname="0.0.0.0", port=port)  # noqa: S104
    controller.start()
    print(f"SMTP sink listening on 0.0.0.0:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
