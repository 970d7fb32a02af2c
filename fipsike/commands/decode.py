"""`fipsike decode [--keys TABLE] FILE`: IKE messages of a capture as JSON Lines."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fipsike.ike.decode import CaptureError, Decoder, KeyTable, datagrams


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "decode",
        help="decode IKEv2 messages from a capture (pcap, pcapng or hex lines) as JSON Lines",
        description="Print one JSON object per IKE message found in FILE (a pcap/pcapng as tcpdump writes it, "
                    "or text with one hex-encoded IKE message per line). With --keys, SK and SKF payloads of "
                    "the IKE SAs in the table are verified, decrypted (fragments reassembled) and their inner "
                    "payloads shown. The key table uses Wireshark's ikev2_decryption_table CSV format: "
                    "SPIi,SPIr,SK_ei,SK_er,encryption,SK_ai,SK_ar,integrity. Keys are used in the default "
                    "(non-FIPS) profile, for offline decoding only.",
    )
    p.add_argument("file", metavar="FILE", help="capture file, or - for standard input")
    p.add_argument("--keys", metavar="TABLE", help="Wireshark ikev2_decryption_table CSV file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            blob = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as f:
                blob = f.read()
    except OSError as exc:
        print(f"fipsike decode: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    router = None
    keys = None
    if args.keys:
        from providers import open_router  # only when decrypting: plain decoding needs no crypto

        router = open_router(profile="default")
        try:
            with open(args.keys, "rb") as f:
                table = f.read()
        except OSError as exc:
            print(f"fipsike decode: {args.keys}: {exc.strerror}", file=sys.stderr)
            return 2
        try:
            # UTF-8 with or without a BOM; errors are "FILE:LINE: ..." and never quote a cell
            keys = KeyTable.parse_bytes(table, router, source=args.keys)
        except ValueError as exc:
            print(f"fipsike decode: {exc}", file=sys.stderr)
            return 2
    decoder = Decoder(router, keys)
    out = sys.stdout
    try:
        for d in datagrams(blob):
            out.write(json.dumps(decoder.decode(d), separators=(",", ":")) + "\n")
    except CaptureError as exc:
        print(f"fipsike decode: {args.file}: {exc}", file=sys.stderr)
        return 1
    return 0  # a reader that went away (| head) is handled, quietly, by fipsike.cli
