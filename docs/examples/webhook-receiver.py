"""A tiny webhook receiver for trying Upstander's webhooks locally (standard library only).

    WEBHOOK_SECRET=whsec_... python3 docs/examples/webhook-receiver.py   # listens on 127.0.0.1:9999

Prints each delivery's Standard Webhooks headers, whether the signature checks out, and the body.
"""

import base64
import hashlib
import hmac
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

KEY = base64.b64decode(os.environ.get("WEBHOOK_SECRET", "whsec_").removeprefix("whsec_"))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        msg_id, stamp = self.headers["webhook-id"], self.headers["webhook-timestamp"]
        mac = hmac.new(KEY, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(mac).decode()
        signatures = self.headers.get("webhook-signature", "").split()
        valid = any(hmac.compare_digest(expected, s) for s in signatures)
        print(f"webhook-id: {msg_id}\nwebhook-timestamp: {stamp}\nsignature valid: {valid}")
        print(body.decode(), flush=True)
        self.send_response(204 if valid else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


HTTPServer(("127.0.0.1", 9999), Receiver).serve_forever()
