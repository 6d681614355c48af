"""Sleeping locks with an owner, so lock rules can be asserted and held locks reported.

``Mutex`` stands in for ``struct mutex`` and ``ww_mutex`` (the reservation lock);
``RwSem`` for ``struct rw_semaphore`` (vfio's ``memory_lock``).  Each records the
owning thread so ``assert_held`` (``lockdep_assert_held``) works, and registers in
the kernel's held-locks table (:class:`HeldLocks`) so shutdown can report a lock left held.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING

from .context import Subsystem
from .errors import KernelBug

if TYPE_CHECKING:
    from .context import KernelContext

__all__ = ["HeldLocks", "Mutex", "RwSem"]


class HeldLocks(Subsystem):
    """The locks held right now, by ``id(lock)`` -> name: one left held at shutdown is a leak."""

    name = "locks"

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        self.held: dict[int, str] = {}

    def leaks(self) -> list[str]:
        return [f"lock still held: {name}" for name in self.held.values()]


class Mutex:
    """A non-recursive mutex that knows its owner."""

    __slots__ = ("_held", "_lock", "name", "owner")

    def __init__(self, kernel: KernelContext, name: str) -> None:
        self._held = kernel.subsys(HeldLocks).held
        self._lock = threading.Lock()
        self.name = name
        self.owner: int | None = None

    def lock(self) -> None:
        me = threading.get_ident()
        if self.owner == me:
            raise KernelBug(f"recursive locking of {self.name}")
        self._lock.acquire()
        self.owner = me
        self._held[id(self)] = self.name

    def trylock(self) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        self.owner = threading.get_ident()
        self._held[id(self)] = self.name
        return True

    def unlock(self) -> None:
        if self.owner != threading.get_ident():
            raise KernelBug(f"unlock of {self.name} by a thread that does not hold it")
        self.owner = None
        self._held.pop(id(self), None)
        self._lock.release()

    @property
    def held(self) -> bool:
        """True when the calling thread holds the lock."""
        return self.owner == threading.get_ident()

    def assert_held(self) -> None:
        if self.owner != threading.get_ident():
            raise KernelBug(f"{self.name} must be held here")

    def __enter__(self) -> Mutex:
        self.lock()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.unlock()


class RwSem:
    """A reader/writer semaphore; writers are exclusive and recorded as owner."""

    __slots__ = ("_cond", "_held", "_readers", "name", "writer")

    def __init__(self, kernel: KernelContext, name: str) -> None:
        self._held = kernel.subsys(HeldLocks).held
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self.name = name
        self.writer: int | None = None

    def down_write(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self.writer == me:
                raise KernelBug(f"recursive down_write of {self.name}")
            while self.writer is not None or self._readers:
                self._cond.wait()
            self.writer = me
        self._held[id(self)] = self.name

    def up_write(self) -> None:
        with self._cond:
            if self.writer != threading.get_ident():
                raise KernelBug(f"up_write of {self.name} by a non-owner")
            self.writer = None
            self._cond.notify_all()
        self._held.pop(id(self), None)

    def down_read(self) -> None:
        with self._cond:
            while self.writer is not None:
                if self.writer == threading.get_ident():
                    raise KernelBug(f"down_read of {self.name} while holding it for write")
                self._cond.wait()
            self._readers += 1

    def up_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if not self._readers:
                self._cond.notify_all()

    def assert_write_held(self) -> None:
        if self.writer != threading.get_ident():
            raise KernelBug(f"{self.name} must be held for write here")
