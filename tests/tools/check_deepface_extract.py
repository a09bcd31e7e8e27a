#!/usr/bin/env python3
"""Check ``tests/reference/deepface-decision.json`` against deepface's fact sheet.

The JSON is the committed extract of three tables of the founders' fact sheet
(``../shared/reference/deepface-facts.md``): §6.1 pre-tuned thresholds, §6.2 confidence
parameters, §2.3 min-max ranges.  The tests read only the JSON, so that they run in a clone
without ``../shared``; this script is the consistency check of the extract against its source::

    python tests/tools/check_deepface_extract.py [--facts FILE] [--json FILE]

It prints each difference and exits 1 when there is one, 2 when the fact sheet is not there.
``tests/pipeline/test_thresholds.py`` runs :func:`differences` on a fact sheet written from the
JSON, so the parser itself is tested everywhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FACTS = REPO.parent / "shared" / "reference" / "deepface-facts.md"
EXTRACT = REPO / "tests" / "reference" / "deepface-decision.json"

#: the first cells of each table's header row
THRESHOLDS_HEADER = "| model | cosine | euclidean |"
CONFIDENCE_HEADER = "| model | metric | w |"
RANGES_HEADER = "| model | min | max"


def table(lines: list[str], header_start: str) -> tuple[list[str], list[list[str]]]:
    """The header cells and the rows of the markdown table whose header row starts so."""
    start = next((i for i, line in enumerate(lines) if line.strip().startswith(header_start)), None)
    if start is None:
        raise ValueError(f"no table whose header starts with {header_start!r}")

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    rows = []
    for line in lines[start + 2:]:
        if not line.strip().startswith("|"):
            break
        rows.append(cells(line))
    return cells(lines[start]), rows


def parse(text: str) -> dict[str, Any]:
    """The three tables of the fact sheet, in the JSON extract's layout."""
    lines = text.splitlines()
    header, rows = table(lines, THRESHOLDS_HEADER)
    thresholds = {r[0]: dict(zip(header[1:], map(float, r[1:]))) for r in rows}
    header, rows = table(lines, CONFIDENCE_HEADER)
    confidence: dict[str, dict[str, dict[str, float]]] = {}
    for model, metric, *values in rows:
        confidence.setdefault(model, {})[metric] = dict(zip(header[2:], map(float, values)))
    _, rows = table(lines, RANGES_HEADER)
    ranges = {name: [float(lo), float(hi)] for name, lo, hi in rows}
    return {"thresholds": thresholds, "confidence": confidence, "value_ranges": ranges}


def differences(facts_text: str, extract: dict[str, Any]) -> list[str]:
    """One line per value where the extract and the fact sheet disagree (``[]``: they agree)."""
    found = parse(facts_text)
    out = []
    for section, want in found.items():
        have = extract.get(section, {})
        for model in sorted(set(want) | set(have)):
            if model not in have:
                out.append(f"{section}: {model} is in the fact sheet, not in the extract")
            elif model not in want:
                out.append(f"{section}: {model} is in the extract, not in the fact sheet")
            elif have[model] != want[model]:
                out.append(f"{section}: {model}: extract {have[model]} != fact sheet {want[model]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=Path, default=FACTS, help=f"the fact sheet (default {FACTS})")
    parser.add_argument("--json", type=Path, default=EXTRACT, help=f"the extract (default {EXTRACT})")
    args = parser.parse_args(argv)
    if not args.facts.is_file():
        print(f"fact sheet not found at {args.facts}", file=sys.stderr)
        return 2
    diffs = differences(args.facts.read_text(encoding="utf-8"), json.loads(args.json.read_text(encoding="utf-8")))
    for line in diffs:
        print(line)
    if not diffs:
        print(f"{args.json.name} agrees with {args.facts}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
