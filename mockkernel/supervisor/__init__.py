"""The supervisor: one mock kernel serving any program and every process it creates.

``mockkernel run -- CMD`` and ``Kernel.run(argv)`` start ``CMD`` under a seccomp
filter whose user notifications this package answers (``supervisor.py``), trace it
with ptrace to follow fork/clone/exec/exit (``tracer.py``) and give each process a
mock ``Process`` whose fd numbers are real fds in the child (``fdtable.py``).  See
``docs/supervisor.md``.
"""

from __future__ import annotations

from .launch import LaunchError
from .run import run, supervise

__all__ = ["LaunchError", "run", "supervise"]
