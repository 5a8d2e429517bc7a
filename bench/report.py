"""Where a benchmark's numbers go: `NAME.json` (the results, their provenance inside) and `NAME.md` (the
table docs/ include through readme_tables.py), side by side under bench/results/, the table printed too.

    from report import write_results
    write_results(RESULTS / "quiet_cue", results, markdown(results))
"""

from __future__ import annotations

import json
from pathlib import Path


def write_results(out: Path, results: dict, table: str, echo: bool = True) -> None:
    """`out`.json and `out`.md (any suffix of `out` replaced), and the table on stdout unless not `echo`."""
    out = Path(out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    out.with_suffix(".md").write_text(table if table.endswith("\n") else table + "\n")
    if echo:
        print(table, flush=True)
