"""Writing the results down: ``RESULTS.md`` (machine, targets, every table) and ``results.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common import table


def targets_table(outcomes: list) -> str:
    rows = sorted((t for o in outcomes for t in o.targets), key=lambda t: t.number)
    return table(["#", "target", "measured", "verdict"], [[str(t.number), t.text, t.measured, t.status] for t in rows])


def write_markdown(path: Path, *, machine: dict, command: str, elapsed: float, outcomes: list, notes: list) -> None:
    lines = [
        "# anynet benchmarks",
        "",
        f"Written by `{command}` in {elapsed:.0f} s on {machine['date']}. Every contender ran in the same process, "
        "interleaved, after a warm-up; times are the min and median of the repeats, and ratios compare time "
        "per step on this machine, so they travel better than the absolute times.",
        "",
        "## Machine",
        "",
        table(["", ""], [[k, str(v)] for k, v in machine.items()]),
        "",
        "## Targets",
        "",
        targets_table(outcomes),
        "",
        "## Results",
        "",
    ]
    for outcome in outcomes:
        lines += [outcome.render(), ""]
        if outcome.key == "sweep" and (path.parent / "sweep.png").exists():
            lines += ["![cost against batch size and width](sweep.png)", ""]
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _row_json(row: Any) -> dict:
    return {
        "name": row.name,
        "kind": row.kind,
        "status": row.status,
        "reason": row.reason,
        "steps": row.steps,
        "times_s": row.times,
        "engine": row.engine,
        "backend": row.backend,
        "device": row.device,
        "result": {k: v for k, v in row.result.items() if k != "params"},
    }


def write_json(path: Path, *, machine: dict, command: str, outcomes: list, notes: list) -> None:
    data = {
        "machine": machine,
        "command": command,
        "notes": notes,
        "workloads": {
            o.key: {
                "title": o.title,
                "setup": o.setup,
                "rows": [_row_json(r) for r in o.rows],
                "targets": [t.__dict__ for t in o.targets],
                **({"memory": o.extra["runs"]} if "runs" in o.extra else {}),
            }
            for o in outcomes
        },
    }
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
