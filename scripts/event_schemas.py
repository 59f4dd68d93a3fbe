"""Write the JSON Schema of every event contract to docs/events/schemas/<type>.v<N>.json.

The schemas are generated from the Pydantic models in `upstander.kit.contracts` (the one place
event payloads are defined), never edited by hand: `python scripts/event_schemas.py` rewrites
them (and deletes schemas of contracts that no longer exist), `--check` only reports drift and
exits 1. tests/contract/test_event_contracts.py runs the same comparison in the suite.

Each schema describes `data` as a publisher of that version writes it: no fields beyond those
listed (`additionalProperties: false`). Consumers are more tolerant: they ignore fields they do
not know, so a publisher may add an optional field without a new version.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_DIR = REPO_ROOT / "docs" / "events" / "schemas"
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema_of(event_type: str, version: int) -> dict[str, Any]:
    """The JSON Schema of one contract's `data`."""
    from upstander.kit.contracts import CONTRACTS, schema_uri

    model = CONTRACTS[(event_type, version)]
    body = model.model_json_schema(mode="validation")
    description = body.pop("description", "")
    body.pop("title", None)  # the model's class name: the event type says more
    return {
        "$schema": DRAFT,
        "$id": schema_uri(event_type, version),
        "title": f"{event_type} v{version}",
        "description": description,
        "x-event-type": event_type,
        "x-event-version": version,
        **body,
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def generate() -> dict[str, str]:
    """File name → content, for every contract."""
    from upstander.kit.contracts import CONTRACTS, schema_name

    return {
        schema_name(event_type, version): render(schema_of(event_type, version))
        for event_type, version in sorted(CONTRACTS)
    }


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """What differs between the committed schemas and the generated ones (empty: none)."""
    wanted = generate()
    present = {path.name: path.read_text() for path in directory.glob("*.json")}
    problems = [f"missing: {name}" for name in sorted(set(wanted) - set(present))]
    problems += [f"stale: {name}" for name in sorted(set(present) - set(wanted))]
    problems += [
        f"differs: {name}"
        for name in sorted(set(wanted) & set(present))
        if wanted[name] != present[name]
    ]
    return problems


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    wanted = generate()
    changed = []
    for path in directory.glob("*.json"):
        if path.name not in wanted:
            path.unlink()
            changed.append(f"deleted {path.name}")
    for name, content in wanted.items():
        path = directory / name
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            changed.append(f"wrote {name}")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift()
        for problem in problems:
            print(problem)
        if problems:
            print("run: python scripts/event_schemas.py", file=sys.stderr)
        return 1 if problems else 0
    for line in write():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
