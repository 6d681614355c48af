"""docs/supervisor.md's support table is the syscall table's own."""

from __future__ import annotations

import re
from pathlib import Path

from mockkernel.supervisor.handlers import TABLE, support_table
from mockkernel.supervisor.seccomp import NR

DOC = Path(__file__).parent.parent.parent / "docs" / "supervisor.md"


def test_doc_table_matches_the_syscall_table() -> None:
    m = re.search(r"<!-- support-table -->\n(.*?)<!-- /support-table -->", DOC.read_text(), re.S)
    assert m is not None
    assert m.group(1) == support_table()


def test_one_entry_per_syscall_number() -> None:
    assert all(NR[s.name] == nr for nr, s in TABLE.items())
    assert {s.status for s in TABLE.values()} <= {"supported", "partial", "unimplemented"}
