#!/usr/bin/env python3
"""An HTTP sink for tests: records every request and answers as told.

Usage:
    python3 tests/tools/http_sink.py --log FILE [--port PORT] [--port-file FILE]
                                     [--mode MODE] [--mode-file FILE] [--answer-file FILE]

Listens on 127.0.0.1:PORT (0, the default, picks a free port; --port-file then receives the
port number once the socket is listening, written atomically, so a test can wait for the file).

Every request is appended to --log as one JSON line, written before the answer (so a "hang"
request is recorded too):
    {"time": <Unix seconds, float>, "method": "POST", "path": "/hook?x=1",
     "headers": {"Content-Type": "application/json", ...},   (names as the client sent them)
     "body": "<the body as UTF-8 text, undecodable bytes replaced>",
     "body_b64": "<the exact body bytes, base64>", "answer": "200"}

MODE says how to answer; --mode-file (re-read at every request, so a test can change it while
the sink runs; an absent or empty file falls back to --mode) wins over --mode:
    200, 202, 400, 429, 500, ...  that status (any 3-digit code), with a small JSON body
    hang                          never answer (the connection stays open until the client
                                  gives up or the sink is stopped)
    500x3                         500 for the first 3 requests this sink has seen, then 200
                                  (any CODExN works: 503x2, 429x1, ...)
Default mode: 200. Stops on SIGTERM or SIGINT. Python 3 standard library only.

--answer-file (re-read at every request; absent or empty = the small JSON body) gives the body
of every answer below 400, as an API would answer (Twilio's {"sid": ...}, GitHub's
{"html_url": ...}); always sent as application/json.
"""

import argparse
import base64
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024


class Sink:
    def __init__(self, log_path, mode, mode_file, answer_file=None):
        self.answer_file = answer_file
        self.log_path = log_path
        self.mode = mode
        self.mode_file = mode_file
        self.lock = threading.Lock()
        self.seen = 0
        self.stopping = threading.Event()

    def current_mode(self):
        if self.mode_file:
            try:
                with open(self.mode_file, encoding="utf-8") as f:
                    text = f.read().strip()
                if text:
                    return text
            except FileNotFoundError:
                pass
        return self.mode

    def answer_body(self):
        """The --answer-file's bytes, or None."""
        if not self.answer_file:
            return None
        try:
            with open(self.answer_file, "rb") as f:
                data = f.read()
            return data or None
        except FileNotFoundError:
            return None

    def record(self, entry):
        """Counts the request and appends it to the log; returns its 1-based number."""
        with self.lock:
            self.seen += 1
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
            return self.seen


def answer_for(mode, number):
    """(status, hang) for the number-th request under mode."""
    if mode == "hang":
        return 0, True
    m = re.fullmatch(r"(\d{3})x(\d+)", mode)
    if m:
        return (int(m.group(1)) if number <= int(m.group(2)) else 200), False
    if re.fullmatch(r"\d{3}", mode):
        return int(mode), False
    raise ValueError(f"unknown mode {mode!r}")


def make_handler(sink):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet: the JSON log is the record
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""
            mode = sink.current_mode()
            entry = {
                "time": time.time(),
                "method": self.command,
                "path": self.path,
                "headers": {k: v for k, v in self.headers.items()},
                "body": body.decode("utf-8", errors="replace"),
                "body_b64": base64.b64encode(body).decode("ascii"),
                "answer": mode,
            }
            number = sink.record(entry)
            try:
                status, hang = answer_for(mode, number)
            except ValueError:
                status, hang = 599, False
            if hang:
                # Wait until the client hangs up or the sink stops; never answer.
                self.close_connection = True
                while not sink.stopping.wait(0.2):
                    try:
                        if self.connection.recv(1, 0x40 | 0x2) == b"":  # MSG_DONTWAIT|MSG_PEEK
                            return
                    except BlockingIOError:
                        continue
                    except OSError:
                        return
                return
            reply = sink.answer_body() if status < 400 else None
            if reply is None:
                reply = json.dumps({"status": "ok" if status < 400 else "error",
                                    "message": f"http_sink answered {status}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        do_POST = do_GET = do_PUT = do_DELETE = do_PATCH = handle_any

    return Handler


def main():
    parser = argparse.ArgumentParser(description="Record HTTP requests and answer as told.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--log", required=True)
    parser.add_argument("--mode", default="200")
    parser.add_argument("--mode-file")
    parser.add_argument("--answer-file")
    args = parser.parse_args()
    try:
        answer_for(args.mode, 1)
    except ValueError as e:
        parser.error(str(e))

    sink = Sink(args.log, args.mode, args.mode_file, args.answer_file)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(sink))
    server.daemon_threads = True

    def stop(signum, frame):
        sink.stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    open(args.log, "a").close()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{server.server_address[1]}\n")
        os.rename(tmp, args.port_file)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
