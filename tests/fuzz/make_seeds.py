#!/usr/bin/env python3
"""Writes the binary seed inputs of the fuzz corpora that cannot be typed by hand: protobuf
messages (messages, admin), netlink dumps of this machine's sockets (sockdiag), spool segments
and replay caches (spool, replay). Text seeds (YAML, /proc, logs, JSON) are plain files in
corpus/<target>/. Run from anywhere: python3 tests/fuzz/make_seeds.py. Needs no protobuf
library: the few messages are encoded here by field number (proto/vigil.proto)."""
import hashlib
import os
import socket
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = b"ag-0123456789abcdef"
SEP = b"\n--8<--\n"  # inputfiles.h INPUTFILES_SEPARATOR


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def f_varint(field, n):
    return varint(field << 3) + varint(n)


def f_bytes(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(field << 3 | 2) + varint(len(data)) + data


def f_double(field, x):
    return varint(field << 3 | 1) + struct.pack("<d", x)


def label(k, v):
    return f_bytes(1, k) + f_bytes(2, v)


def envelope(body_field, body, seq=0, version=2, sender=SENDER):
    return (f_varint(1, version) + f_bytes(2, sender) + f_varint(3, seq) +
            f_varint(4, 1790000000000) + f_bytes(body_field, body))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def messages():
    sig = lambda name, value, labels=(): (f_bytes(1, name) + f_double(2, value) +
                                          f_bytes(3, "percent") +
                                          b"".join(f_bytes(4, label(k, v)) for k, v in labels) +
                                          f_varint(5, 1790000000000))
    batch = b"".join(f_bytes(1, sig("host.disk.used_pct", 42.0, [("mount", "/"), ("fstype", m)]))
                     for m in ("ext4", "xfs", "btrfs", "tmpfs", "vfat", "zfs"))
    batch += f_bytes(1, sig("host.cpu.busy_pct", 3.0))
    write("messages", "signals-past-series-bound", envelope(15, batch, seq=7))
    write("messages", "signals-repeated-series",
          envelope(15, f_bytes(1, sig("host.load.1m", 1.0)) * 3, seq=8))
    action = (f_bytes(1, "restart-app") + f_bytes(2, "systemd") + f_bytes(3, "approve") +
              f_bytes(4, "unit") + f_bytes(4, "lines") + f_varint(5, 1) + f_bytes(6, "stop-app") +
              f_bytes(7, f_bytes(1, "log_tail") + f_bytes(2, label("name", "app"))))
    action2 = f_bytes(1, "block-ip") + f_bytes(2, "nft") + f_bytes(3, "destructive") + f_bytes(4, "ip")
    bad = f_bytes(1, "x") + f_bytes(2, "exec") + f_bytes(3, "sometimes")
    enroll = (f_bytes(1, "worker-3") + f_bytes(2, "0.1.0") + f_bytes(3, b"\x01" * 32) +
              f_bytes(4, action) + f_bytes(4, action2) + f_bytes(4, bad))
    write("messages", "enroll-catalog", envelope(10, enroll))
    write("messages", "collect-log-tail",
          envelope(16, f_varint(1, 5) + f_bytes(2, "log_tail") + f_bytes(3, label("name", "app")) +
                   f_bytes(3, label("lines", "200")) + f_varint(4, 1790000060000),
                   sender=b"coordinator"))
    write("messages", "collect-unknown-kind",
          envelope(16, f_varint(1, 6) + f_bytes(2, "tcpdump"), sender=b"coordinator"))
    write("messages", "ack-ranges",
          envelope(13, f_bytes(1, f_varint(1, 1) + f_varint(2, 5)) +
                   f_bytes(1, f_varint(1, 7) + f_varint(2, 7)), sender=b"coordinator"))
    write("messages", "refusal",
          envelope(14, f_varint(1, 3) + f_varint(2, 9) + f_bytes(3, "record not stored"),
                   sender=b"coordinator"))
    write("messages", "enroll-reply",
          envelope(11, f_bytes(2, SENDER) + f_varint(3, 5000), sender=b"coordinator"))
    write("messages", "command-report-done",
          envelope(19, f_bytes(1, "req-1") + f_bytes(2, b"\x02" * 16) + f_varint(3, 4) +
                   f_varint(4, 0) + f_varint(5, 12) + f_bytes(6, b"\x03" * 32) +
                   f_varint(9, 1790000000000), seq=9))
    write("messages", "command-report-refused",
          envelope(19, f_bytes(1, "req-2") + f_bytes(2, b"\x02" * 16) + f_varint(3, 5) +
                   f_bytes(8, "unknown action"), seq=10))
    write("messages", "command-report-bad-utf8",
          envelope(19, f_bytes(1, b"req-\xff") + f_bytes(2, b"\x02" * 16) + f_varint(3, 5) +
                   f_bytes(8, b"\xc3("), seq=11))
    chunk = (f_varint(1, 5) + f_varint(2, 1) + f_bytes(3, "host") + f_varint(5, 1790000000000) +
             f_bytes(7, b"uptime 12345\n") + f_varint(8, 1) + f_varint(9, 13) +
             f_bytes(10, hashlib.sha256(b"uptime 12345\n").digest()))
    write("messages", "evidence-last-chunk", envelope(17, chunk, seq=12))
    write("messages", "evidence-error",
          envelope(17, f_varint(1, 5) + f_bytes(3, "file") + f_bytes(12, "path not allowed"),
                   seq=13))
    write("messages", "heartbeat", envelope(12, f_bytes(1, "0.1.0") + f_varint(2, 60)))


def admin():
    # AdminRequest: version 1, request_id 2, body fields 10..42 (proto/vigil.proto).
    header = f_varint(1, 2) + f_varint(2, 1)
    bodies = {
        "list-agents": (10, f_varint(2, 100)),
        "approve-agent": (11, f_bytes(1, SENDER)),
        "revoke-agent": (12, f_bytes(1, SENDER)),
        "list-signals": (13, f_bytes(1, "worker-3") + f_bytes(2, "host.*") + f_varint(4, 10)),
        "collect": (14, f_bytes(1, "worker-3") + f_bytes(3, "log_tail") +
                    f_bytes(4, label("name", "app")) + f_varint(5, 30000)),
        "collect-bad-kind": (14, f_varint(2, 1) + f_bytes(3, "Bad Kind")),
        "list-evidence": (15, f_varint(1, 5) + f_varint(3, 10)),
        "get-evidence": (16, f_varint(1, 1) + f_varint(3, 65536)),
        "list-incidents": (17, f_varint(1, 1)),
        "show-incident": (18, f_varint(1, 42)),
        "ack-incident": (19, f_varint(1, 42)),
        "resolve-incident": (20, f_varint(1, 42) + f_bytes(2, "fixed")),
        "put-report": (22, f_varint(1, 42) + f_bytes(2, "# Report\n")),
        "escalate": (25, f_varint(1, 42)),
        "add-oncall-override": (31, f_bytes(1, "primary") + f_bytes(2, "alice")),
        "add-operator": (33, f_bytes(1, "bob") + f_bytes(2, "responder")),
        "run-command": (36, f_bytes(1, "worker-3") + f_bytes(2, "restart-app") +
                        f_bytes(3, label("unit", "app.service"))),
        "approve-command": (37, f_bytes(1, "req-1")),
        "set-automation": (42, f_varint(1, 1)),
    }
    for name, (field, body) in bodies.items():
        write("admin", name, header + f_bytes(field, body))
    write("admin", "no-body", header)
    write("admin", "version-0", f_varint(2, 1) + f_bytes(10, b""))
    # Every body type, empty: what each check says about missing fields.
    for field in range(10, 43):
        write("admin", "empty-%d" % field, header + f_bytes(field, b""))


def sockdiag():
    """Real dumps of this machine's sockets, request seq rewritten to 1 (fuzz_sockdiag.c)."""
    def dump(req_type, payload, name):
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4)  # NETLINK_SOCK_DIAG
        hdr = struct.pack("=IHHII", 16 + len(payload), req_type, 0x301, 1, 0)
        s.sendto(hdr + payload, (0, 0))
        batches = []
        while True:
            data = s.recv(32768)
            batches.append(data)
            off, done = 0, False
            while off + 16 <= len(data):
                length, typ = struct.unpack_from("=IH", data, off)
                if typ in (2, 3):  # NLMSG_ERROR, NLMSG_DONE
                    done = True
                off += (length + 3) & ~3
            if done or len(batches) > 8:
                break
        s.close()
        if len(batches[0]) > 20:  # more than NLMSG_DONE alone
            write("sockdiag", name, batches[0][:16384])
    # SOCK_DIAG_BY_FAMILY (20): inet_diag_req_v2 {family, protocol, ext, pad, states, id(48)}
    for fam, proto, name in ((socket.AF_INET, 6, "tcp4"), (socket.AF_INET6, 6, "tcp6"),
                             (socket.AF_INET, 17, "udp4")):
        dump(20, struct.pack("=BBBBI", fam, proto, 0, 0, 0xFFFFFFFF) + b"\0" * 48, name)
    # unix_diag_req {family, protocol, pad, states, ino, show, cookie[2]}
    dump(20, struct.pack("=BBHIIIII", socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, 0, 0, 0), "unix")
    # Made up: an IPv6 listener on an IPv4-mapped address with a backlog, a TIME_WAIT socket,
    # a record of another request (seq 2), one too short, then NLMSG_DONE.
    def inet(family, state, src, sport, dst, dport, rq, wq, inode, seq=1):
        msg = struct.pack("=BBBB", family, state, 0, 0) + struct.pack(">HH", sport, dport)
        msg += src.ljust(16, b"\0") + dst.ljust(16, b"\0") + struct.pack("=III", 0, 0, 0)
        msg += struct.pack("=IIIII", 0, rq, wq, 1000, inode)
        return struct.pack("=IHHII", 16 + len(msg), 20, 2, seq, 0) + msg
    mapped = b"\0" * 10 + b"\xff\xff" + bytes([127, 0, 0, 1])
    made = (inet(socket.AF_INET6, 10, mapped, 8080, b"", 0, 3, 128, 4242) +
            inet(socket.AF_INET, 6, bytes([10, 0, 0, 1]), 5432, bytes([10, 0, 0, 2]), 40000, 0,
                 0, 0) +
            inet(socket.AF_INET, 1, b"", 1, b"", 2, 0, 0, 7, seq=2) +
            struct.pack("=IHHII", 20, 20, 2, 1, 0) + b"\x02\x01\0\0" +
            struct.pack("=IHHII", 20, 3, 2, 1, 0) + struct.pack("=i", 0))
    write("sockdiag", "made-up-records", made)
    err = struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -2) + b"\0" * 16
    write("sockdiag", "error-enoent", err)
    write("sockdiag", "done", struct.pack("=IHHII", 20, 3, 2, 1, 0) + struct.pack("=i", 0))


def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc


def spool_record(seq, kind, payload, samples=1):
    hdr = bytearray(struct.pack("<IIIQBI", 0x52534756, len(payload), 0, seq, kind, samples))
    crc = crc32c(bytes(hdr[12:25]), crc32c(bytes(hdr[0:8])))
    crc = crc32c(payload, crc) ^ 0xFFFFFFFF
    struct.pack_into("<I", hdr, 8, crc)
    return bytes(hdr) + payload


def spool():
    state = b"vigil-spool 1\nseq_ceiling 6\ndropped_messages 0\ndropped_samples 0\n"
    seg1 = b"".join(spool_record(s, 1 if s != 2 else 2, b"batch %d" % s) for s in (1, 2, 3))
    seg2 = b"".join(spool_record(s, 3, b"report %d" % s) for s in (4, 5))
    files = lambda parts: SEP.join(n + b"\n" + c for n, c in parts)
    # First byte: bit 0 = fix CRCs, bit 1 = ack while reading (fuzz_spool.c).
    write("spool", "two-segments", b"\0" + files([(b"next-seq", state),
                                                   (b"0000000000000001.seg", seg1),
                                                   (b"0000000000000004.seg", seg2)]))
    write("spool", "torn-tail", b"\2" + files([(b"next-seq", state),
                                                (b"0000000000000001.seg", seg1[:-3])]))
    write("spool", "no-state-file", b"\0" + files([(b"0000000000000001.seg", seg1)]))
    write("spool", "bad-state-file", b"\0" + files([(b"next-seq", b"vigil-spool 1\nseq_ceiling x\n"),
                                                     (b"0000000000000001.seg", seg1)]))
    write("spool", "ceiling-max", b"\0" + files([(b"next-seq", b"vigil-spool 1\nseq_ceiling "
                                                   b"18446744073709551615\ndropped_messages 0\n"
                                                   b"dropped_samples 0\n")]))
    write("spool", "seq-out-of-order", b"\1" + files([
        (b"0000000000000001.seg", spool_record(3, 1, b"a") + spool_record(2, 1, b"b"))]))
    write("spool", "wrong-base", b"\0" + files([(b"0000000000000009.seg", seg1)]))
    write("spool", "leftover-tmp", b"\0" + files([(b"next-seq.tmp", b"junk"),
                                                   (b"0000000000000001.seg", seg1)]))


def replay():
    header = b"vigil-replay-v1\n"

    def rec(nonce, not_after):
        body = nonce + struct.pack(">q", not_after)
        return body + hashlib.sha256(body).digest()[:8]
    now = 1790000000000
    live = b"".join(rec(bytes([i]) * 16, now + 600000) for i in range(1, 4))
    expired = b"".join(rec(bytes([0x40 + i]) * 16, now - 1000) for i in range(40))
    # First byte: bit 0 = fix checks, bits 1..3 = max_entries - 1 (fuzz_replay.c).
    write("replay", "live", b"\x0e" + header + live)
    write("replay", "expired-many", b"\x0e" + header + expired + live)
    write("replay", "torn-last", b"\x0e" + header + live + b"\xaa" * 20)
    write("replay", "bad-last-check", b"\x0e" + header + live[:-1] + b"\0")
    write("replay", "bad-middle-check", b"\x0e" + header + live[:40] + b"\0" + live[41:])
    write("replay", "bad-header", b"\x0e" + b"vigil-replay-v2\n" + live)
    write("replay", "empty", b"\x00")
    write("replay", "full", b"\x00" + header + live)
    write("replay", "fixup", b"\x01" + header + b"\x11" * 32 + b"\x22" * 32)


if __name__ == "__main__":
    messages()
    admin()
    sockdiag()
    spool()
    replay()
