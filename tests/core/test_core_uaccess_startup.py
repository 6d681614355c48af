"""uaccess start-up is exception-safe (issue 12, defect 5): an exception while loading
``process_vm_readv``/``_writev`` (a ``KeyboardInterrupt`` from a signal handler, a
``MemoryError``) leaves nothing half-built, so the next access works instead of every
later uaccess in the process raising ``IndexError``."""

from __future__ import annotations

import ctypes
import os
from typing import Any

import pytest

from mockkernel.uaccess import UserMemory


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), MemoryError(), OSError("dlsym")])
def test_an_interrupted_first_use_leaves_uaccess_working(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    lookups: list[str] = []

    class Interrupted(ctypes.CDLL):
        """libc whose second symbol lookup is interrupted, the first time only: the
        loading stops after ``process_vm_readv`` was found and typed."""

        def __getattr__(self, name: str) -> Any:
            lookups.append(name)
            if name == "process_vm_writev" and lookups.count(name) == 1:
                raise exc
            return super().__getattr__(name)

    monkeypatch.setattr(ctypes, "CDLL", Interrupted)
    mm = UserMemory(os.getpid())
    buf = ctypes.create_string_buffer(b"payload!", 8)
    addr = ctypes.addressof(buf)
    with pytest.raises(type(exc)):
        mm.read(addr, 8)
    assert lookups == ["process_vm_readv", "process_vm_writev"]
    assert mm.read(addr, 8) == b"payload!"  # loaded again, whole
    mm.write(addr, b"PAYLOAD!")
    assert buf.raw == b"PAYLOAD!"
    mm.write(addr + 4, b"?")
    assert buf.raw == b"PAYL?AD!"
    assert lookups.count("process_vm_writev") == 2  # loaded once more, then kept
