"""A real local SMTP server for the mail tests (aiosmtpd, from PyPI).

    python3 smtp_sink.py PORT DIR

Accepts mail for any recipient except:
  bounce@...  -> 550 (a permanent refusal: a hard bounce)
  later@...   -> 451 (a transient refusal: retry later)
Each accepted message is written to DIR as <n>.eml (the raw DATA). Prints "ready" once
listening and serves until killed.
"""
import os
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce@"):
            return "550 5.1.1 <%s>: no such user" % address
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        with open(os.path.join(self.out, "%d.eml" % self.n), "wb") as f:
            f.write(envelope.original_content or envelope.content)
        return "250 2.0.0 queued as %d" % self.n


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    controller = Controller(Sink(out), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
