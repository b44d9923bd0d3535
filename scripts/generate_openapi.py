#!/usr/bin/env python3
"""Write the OpenAPI document of the HTTP/JSON API to docs/openapi.json, from the protos.

``make proto`` writes it with the generated code; ``make lint`` runs this with ``--check``: it
fails when the committed document differs from what the protos give, and validates it against
the OpenAPI 3.1 schema.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.gateway import openapi, routes  # noqa: E402

DOCUMENT = ROOT / "docs" / "openapi.json"


def render() -> str:
    """The document as committed: indented, keys in a stable order, a final newline."""
    return json.dumps(openapi(routes()), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" not in argv:
        DOCUMENT.write_text(text, encoding="utf-8")
        print(f"wrote {DOCUMENT.relative_to(ROOT)}")
        return 0
    from openapi_spec_validator import validate

    validate(json.loads(text))
    if not DOCUMENT.exists() or DOCUMENT.read_text(encoding="utf-8") != text:
        print(
            f"{DOCUMENT.relative_to(ROOT)} does not match the protos: run `make proto`",
            file=sys.stderr,
        )
        return 1
    print("docs/openapi.json matches the protos and validates")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
