"""Compare a probe's output with its golden file, line by line.

Both sides are JSON Lines as printed by the probes in ``probes/``: one object
per line, ``{"step": NAME, "ok": RESULT}`` or ``{"step": NAME, "errno": "ENAME"}``
(or ``{"step": NAME, "exception": "TypeName"}`` for a Python-level refusal).
Lines are compared as parsed JSON, so key order and spacing do not matter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable


def _parse(line: str):
    try:
        return json.loads(line)
    except ValueError:
        return line  # not JSON (e.g. a traceback): compared as text


def _step(obj, index: int) -> str:
    if isinstance(obj, dict) and "step" in obj:
        return str(obj["step"])
    return f"line {index + 1}"


def diff_jsonl(expected_lines: Iterable[str], actual_lines: Iterable[str]) -> list[str]:
    """Return human-readable differences; an empty list means the outputs match.

    Steps are matched by name, in order; a step missing on one side, an extra
    step, or a step whose result differs each give one message.
    """
    exp = [_parse(line) for line in expected_lines if line.strip()]
    act = [_parse(line) for line in actual_lines if line.strip()]
    exp_by = {}
    for i, o in enumerate(exp):
        exp_by.setdefault(_step(o, i), o)
    act_by = {}
    for i, o in enumerate(act):
        act_by.setdefault(_step(o, i), o)
    out = []
    for i, o in enumerate(exp):
        name = _step(o, i)
        if name not in act_by:
            out.append(f"{name}: missing (expected {json.dumps(o)})")
        elif act_by[name] != o:
            out.append(f"{name}: expected {json.dumps(o)}, got {json.dumps(act_by[name])}")
    for i, o in enumerate(act):
        name = _step(o, i)
        if name not in exp_by:
            out.append(f"{name}: unexpected (got {json.dumps(o)})")
    order_exp = [_step(o, i) for i, o in enumerate(exp)]
    order_act = [_step(o, i) for i, o in enumerate(act)]
    if not out and order_exp != order_act:
        out.append("steps in a different order")
    return out


if __name__ == "__main__":
    import sys

    with open(sys.argv[1]) as f1, open(sys.argv[2]) as f2:
        problems = diff_jsonl(f1.read().splitlines(), f2.read().splitlines())
    print("\n".join(problems) if problems else "match")
    sys.exit(1 if problems else 0)
