#!/usr/bin/python3
"""fake_pg.py: what a compromised DB node can put on its PostgreSQL port.

Speaks just enough of the PostgreSQL protocol (v3) for the backup host's claim
check: refuses SSL or, with --tls, speaks it with the certificate it is given;
asks for a cleartext password (recorded in --password-log), runs the server's
side of SCRAM-SHA-256(-PLUS) far enough to receive the client's proof
(--scram: it never lets the client in), or lets anyone in, and answers
IDENTIFY_SYSTEM, pg_is_in_recovery(), SHOW wal_segment_size and
TIMELINE_HISTORY with whatever it is told.  --events FILE: one line per step
of each connection (how far the client came); --capture FILE: every message
the client sent after an authentication request, as Python bytes literals.
Used by test/orchestrator/03_claim.t, 11_no_credential.t and 12_takeover.t
to run the review's attacks; it listens on a namespace address only.

usage: fake_pg.py ADDR PORT --timeline N [--in-recovery] [--history TEXT]
                  [--tls CERT KEY] [--events FILE] [--capture FILE]
                  [--cleartext --password-log FILE | --scram]
                  [--fatal SQLSTATE:MESSAGE | --stall | --stall-queries | --no-columns
                   | --recovery TEXT]

--fatal refuses every session after its startup packet with that error (as a
primary whose connection slots are full does), --stall accepts and never
answers (as a stopped postmaster whose kernel completes the handshake),
--stall-queries lets the client in and answers no query, --no-columns answers
pg_is_in_recovery() with a row of no columns and --recovery with TEXT.
"""
import argparse
import base64
import os
import socket
import ssl
import struct
import threading

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104


def msg(kind, payload=b""):
    return kind + struct.pack("!I", len(payload) + 4) + payload


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def recv_message(conn):
    kind = recv_exact(conn, 1)
    (length,) = struct.unpack("!I", recv_exact(conn, 4))
    return kind, recv_exact(conn, length - 4)


def note(path, line):
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def recv_captured(conn, args):
    kind, payload = recv_message(conn)
    note(args.capture, repr(kind + payload))
    return kind, payload


def scram(conn, args):
    """Asks for SCRAM; answers the client-first so that a client holding a
    password sends its proof (the client-final), which is captured."""
    plus = b"SCRAM-SHA-256-PLUS\0" if isinstance(conn, ssl.SSLSocket) else b""
    conn.sendall(msg(b"R", struct.pack("!I", 10) + plus + b"SCRAM-SHA-256\0\0"))
    note(args.events, "asked for SCRAM")
    kind, payload = recv_captured(conn, args)
    if kind != b"p":
        return
    first = payload.split(b"\0", 1)[1][4:]
    nonce = first.split(b"r=", 1)[1].split(b",")[0]
    salt = base64.b64encode(os.urandom(16))
    conn.sendall(msg(b"R", struct.pack("!I", 11) + b"r=" + nonce + b"fake,s=" + salt + b",i=4096"))
    recv_captured(conn, args)


def rows(conn, names, values, tag):
    desc = struct.pack("!H", len(names))
    for name in names:
        desc += name.encode() + b"\0" + struct.pack("!IhIhih", 0, 0, 25, -1, -1, 0)
    data = struct.pack("!H", len(values))
    for value in values:
        data += struct.pack("!I", len(value)) + value.encode()
    conn.sendall(msg(b"T", desc) + msg(b"D", data) + msg(b"C", tag.encode() + b"\0")
                 + msg(b"Z", b"I"))


def serve(conn, args):
    try:
        while True:
            (length,) = struct.unpack("!I", recv_exact(conn, 4))
            body = recv_exact(conn, length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code == SSL_REQUEST and args.tls:
                conn.sendall(b"S")
                try:
                    conn = args.tls_context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    note(args.events, "TLS handshake failed: %s" % e)
                    return
                note(args.events, "TLS")
                continue
            if code in (SSL_REQUEST, GSS_REQUEST):
                note(args.events, "TLS refused")
                conn.sendall(b"N")
                continue
            break
        words = body[4:].split(b"\0")
        note(args.events, "startup user=%s" % dict(zip(words[0::2], words[1::2])).get(b"user", b"").decode())
        if args.stall:
            while conn.recv(4096):
                pass
            return
        if args.fatal:
            code, _, text = args.fatal.partition(":")
            err = b"SFATAL\0C" + code.encode() + b"\0M" + text.encode() + b"\0\0"
            conn.sendall(msg(b"E", err))
            return
        if args.scram:
            scram(conn, args)
            conn.sendall(msg(b"E", b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"))
            return
        if args.cleartext:
            conn.sendall(msg(b"R", struct.pack("!I", 3)))
            note(args.events, "asked for a cleartext password")
            kind, payload = recv_captured(conn, args)
            if kind == b"p":
                with open(args.password_log, "ab") as log:
                    log.write(payload.rstrip(b"\0") + b"\n")
        conn.sendall(msg(b"R", struct.pack("!I", 0)))
        for key, value in (("server_version", "15.20"), ("server_encoding", "UTF8"),
                           ("client_encoding", "UTF8"), ("integer_datetimes", "on"),
                           ("standard_conforming_strings", "on"), ("DateStyle", "ISO, MDY")):
            conn.sendall(msg(b"S", key.encode() + b"\0" + value.encode() + b"\0"))
        conn.sendall(msg(b"K", struct.pack("!II", 4242, 4242)) + msg(b"Z", b"I"))
        while True:
            kind, payload = recv_message(conn)
            if kind == b"X":
                return
            query = payload.rstrip(b"\0").decode().strip().rstrip(";")
            if args.stall_queries:
                continue
            if query == "IDENTIFY_SYSTEM":
                rows(conn, ["systemid", "timeline", "xlogpos", "dbname"],
                     ["7000000000000000001", str(args.timeline), "0/3000000", "postgres"],
                     "IDENTIFY_SYSTEM")
            elif query.startswith("SELECT pg_is_in_recovery()") and args.no_columns:
                conn.sendall(msg(b"T", struct.pack("!H", 0)) + msg(b"D", struct.pack("!H", 0))
                             + msg(b"C", b"SELECT 1\0") + msg(b"Z", b"I"))
            elif query.startswith("SELECT pg_is_in_recovery()"):
                said = args.recovery or ("t" if args.in_recovery else "f")
                rows(conn, ["pg_is_in_recovery"], [said], "SELECT 1")
            elif query == "SHOW wal_segment_size":
                rows(conn, ["wal_segment_size"], ["16MB"], "SHOW")
            elif query.startswith("TIMELINE_HISTORY"):
                tli = int(query.split()[1])
                rows(conn, ["filename", "content"], ["%08X.history" % tli, args.history],
                     "TIMELINE_HISTORY")
            else:
                err = b"SERROR\0C42601\0Mnot supported here\0\0"
                conn.sendall(msg(b"E", err) + msg(b"Z", b"I"))
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("addr")
    parser.add_argument("port", type=int)
    parser.add_argument("--timeline", type=int, required=True)
    parser.add_argument("--in-recovery", action="store_true")
    parser.add_argument("--history", default="")
    parser.add_argument("--cleartext", action="store_true")
    parser.add_argument("--password-log", default="/dev/null")
    parser.add_argument("--fatal", default="")
    parser.add_argument("--stall", action="store_true")
    parser.add_argument("--stall-queries", action="store_true")
    parser.add_argument("--no-columns", action="store_true")
    parser.add_argument("--recovery", default="")
    parser.add_argument("--scram", action="store_true")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--events")
    parser.add_argument("--capture")
    args = parser.parse_args()
    if args.tls:
        args.tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        args.tls_context.load_cert_chain(*args.tls)
    args.history = args.history.replace("\\t", "\t").replace("\\n", "\n")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.addr, args.port))
    sock.listen(16)
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve, args=(conn, args), daemon=True).start()


if __name__ == "__main__":
    main()
