"""Check a case-export bundle offline, with nothing but the deployment's public export keys.

    python -m upstander.cases.verify BUNDLE.zip --key export-keys.json
    python -m upstander.cases.verify BUNDLE.zip --key-url https://HOST/cases/v1/export-keys

`--key` is a JWK set as `GET /cases/v1/export-keys` returns it (or one JWK). Prints `valid`
and what the manifest says, or `invalid` and one line per problem. Exit status: 0 valid,
1 invalid, 2 when the command itself cannot run (bad arguments, unreadable keys).

It imports neither the service nor its settings: only `export/bundle.py`, the check the
service's own `POST /cases/v1/exports/verify` runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from upstander.cases.export.bundle import keys_from_jwks, verify_bundle

VALID, INVALID, UNUSABLE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m upstander.cases.verify",
        description="Verify a signed Upstander case-export bundle with the public export keys.",
    )
    parser.add_argument("bundle", type=Path, help="the ZIP file, as exported")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--key", type=Path, help="a JWK set file (from /cases/v1/export-keys)")
    source.add_argument("--key-url", help="where the JWK set is published")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _load_keys(args: argparse.Namespace) -> dict[str, Ed25519PublicKey]:
    document: Any
    if args.key is not None:
        document = json.loads(args.key.read_text(encoding="utf-8"))
    else:
        import httpx  # only for --key-url

        response = httpx.get(args.key_url, timeout=15.0, follow_redirects=True)
        response.raise_for_status()
        document = response.json()
    return keys_from_jwks(document)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        keys = _load_keys(args)
    except Exception as error:  # any failure to get the keys: say so, never a traceback
        print(f"cannot load the public keys: {error}", file=sys.stderr)
        return UNUSABLE
    if not args.bundle.is_file():
        print(f"no such file: {args.bundle}", file=sys.stderr)
        return UNUSABLE

    result = verify_bundle(args.bundle, keys)
    header = result.manifest or {}
    if args.json:
        print(
            json.dumps(
                {
                    "valid": result.valid,
                    "problems": [
                        {"code": p.code, "path": p.path, "detail": p.detail}
                        for p in result.problems
                    ],
                    "manifest": header,
                },
                indent=2,
                sort_keys=True,
            )
        )
    elif result.valid:
        exporter = header.get("exporter") or {}
        print(
            f"valid: case {header.get('case_number')} ({header.get('case_id')}), exported "
            f"{header.get('exported_at')} by {exporter.get('kind')} {exporter.get('id')}, "
            f"signed with key {header.get('key_id')}"
        )
    else:
        print(f"invalid: {len(result.problems)} problem(s)")
        for problem in result.problems:
            print(f"  {problem}")
    return VALID if result.valid else INVALID


if __name__ == "__main__":
    raise SystemExit(main())
