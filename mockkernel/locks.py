"""Sleeping locks with an owner, so lock rules can be asserted and held locks reported.

``Mutex`` stands in for ``struct mutex`` and ``ww_mutex`` (the reservation lock);
``RwSem`` for ``struct rw_semaphore`` (vfio's ``memory_lock``).  Each records the
owning thread so ``assert_held`` (``lockdep_assert_held``) works, and registers in
the kernel's held-locks table (:class:`HeldLocks`) so shutdown can report a lock left held.

:class:`LockDep` is the lock validator (``kernel/locking/lockdep.c``), off unless
asked for (``HeldLocks.enable_lockdep()``; ``MOCKKERNEL_LOCKDEP=1`` in the environment
at boot for the order checks, ``=full`` for the return-to-user check too: the test suite
sets ``1``).  It records, per lock class, which classes
were held when it was taken, with the stack of the first time; taking ``B`` while
holding ``A`` when ``A`` was once taken while ``B`` (or a chain leading to ``B``) was
held is a :class:`KernelBug` naming both stacks; so is a lock still held when a syscall
returns to userspace.  Off, it costs each lock operation one attribute check.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .context import Subsystem
from .errors import KernelBug

if TYPE_CHECKING:
    from .context import KernelContext

__all__ = ["HeldLocks", "LockDep", "Mutex", "RwSem", "lock_class_of"]

#: instance parts of a lock's name (a BDF, a number) that do not make a new class
_INSTANCE = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]|#?\b\d+\b")


def lock_class_of(lock: Mutex | RwSem) -> str:
    """The lockdep class of a lock: its type and its name without instance parts
    (every dma-buf's reservation lock is one class, as ``reservation_ww_class``)."""
    return f"{type(lock).__name__}:{_INSTANCE.sub('N', lock.name)}"


def _stack() -> str:
    """Where a lock is being taken: the caller's frames (the lock code left out), as
    ``file:line in function`` lines, innermost last; cheap enough to take on every
    acquisition (no source lines are read)."""
    out: list[str] = []
    f = sys._getframe(1)
    while f is not None and len(out) < 12:
        code = f.f_code
        if not code.co_filename.endswith("locks.py"):
            out.append(f"  {code.co_filename}:{f.f_lineno} in {code.co_name}\n")
        f = f.f_back  # type: ignore[assignment]
    return "".join(reversed(out))


class LockDep:
    """Lock-order validation for one kernel (see the module)."""

    def __init__(self) -> None:
        #: (class held, class taken) -> (stack that took the held one, stack that took
        #: the second): the first time that order was seen
        self.order: dict[tuple[str, str], tuple[str, str]] = {}
        self._after: dict[str, set[str]] = {}
        self._local = threading.local()

    def held(self) -> list[tuple[int, str, str]]:
        """This thread's held locks, in order: (id(lock), class, stack that took it)."""
        stack: list[tuple[int, str, str]] | None = getattr(self._local, "held", None)
        if stack is None:
            stack = self._local.held = []
        return stack

    def _reaches(self, start: str, goal: str) -> bool:
        seen = {start}
        todo = [start]
        while todo:
            for nxt in self._after.get(todo.pop(), ()):
                if nxt == goal:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    def acquire(self, lock: Mutex | RwSem) -> None:
        """``lock_acquire``: check the order against what this thread holds, record it."""
        cls = lock_class_of(lock)
        here = _stack()
        held = self.held()
        for _, hcls, hstack in held:
            if hcls == cls:
                continue  # (nesting one class: ww_mutex acquire contexts; not validated)
            if (hcls, cls) in self.order:
                continue
            if self._reaches(cls, hcls):
                first = self.order.get((cls, hcls))
                was = (
                    f"{cls} then {hcls} was first taken here:\n{first[0]}...and\n{first[1]}"
                    if first is not None
                    else f"{cls} leads to {hcls} through other locks"
                )
                raise KernelBug(
                    f"possible circular locking dependency: taking {cls} while holding "
                    f"{hcls}\n{hcls} was taken here:\n{hstack}{cls} is being taken here:\n"
                    f"{here}but the reverse order is known: {was}"
                )
            self.order[(hcls, cls)] = (hstack, here)
            self._after.setdefault(hcls, set()).add(cls)
        held.append((id(lock), cls, here))

    def release(self, lock: Mutex | RwSem) -> None:
        """``lock_release``: forget it from this thread's held stack."""
        held = self.held()
        key = id(lock)
        for i in range(len(held) - 1, -1, -1):
            if held[i][0] == key:
                del held[i]
                return

    def check_return_to_user(self, what: str) -> None:
        """``lockdep_sys_exit``: no lock may be held when a syscall returns."""
        held = self.held()
        if held:
            _, cls, stack = held[-1]
            names = ", ".join(c for _, c, _ in held)
            held.clear()  # (reported once)
            raise KernelBug(
                f"lock held when returning to user space from {what}: {names}\n"
                f"{cls} was taken here:\n{stack}"
            )

    def sink(self, event: dict[str, Any]) -> None:
        """A trace sink: every ``sys.*`` event is a syscall returning to userspace."""
        name = event.get("event", "")
        if isinstance(name, str) and name.startswith("sys."):
            self.check_return_to_user(name)


class HeldLocks(Subsystem):
    """The locks held right now, by ``id(lock)`` -> name: one left held at shutdown is a leak."""

    name = "locks"
    probe_independent = True  # (no driver probe reads or changes it)

    def __init__(self, kernel: KernelContext) -> None:
        super().__init__(kernel)
        self.held: dict[int, str] = {}
        #: the lock validator, when on (see the module)
        self.lockdep: LockDep | None = None
        mode = os.environ.get("MOCKKERNEL_LOCKDEP", "")
        if mode not in ("", "0"):
            self.enable_lockdep(return_to_user=mode == "full")

    def enable_lockdep(self, return_to_user: bool = True) -> LockDep:
        """Turn the validator on: order checks on every lock operation and, with
        ``return_to_user``, the check that no lock is held when a syscall returns (a trace
        sink: every syscall then takes the traced path, the hot path's fast branch too)."""
        if self.lockdep is None:
            self.lockdep = LockDep()
        if return_to_user and self.lockdep.sink not in self.kernel.tracer.sinks:
            self.kernel.tracer.add_sink(self.lockdep.sink)
        return self.lockdep

    def leaks(self) -> list[str]:
        return [f"lock still held: {name}" for name in self.held.values()]


class Mutex:
    """A non-recursive mutex that knows its owner."""

    __slots__ = ("_held", "_lock", "_locks", "name", "owner")

    def __init__(self, kernel: KernelContext, name: str) -> None:
        self._locks = kernel.subsys(HeldLocks)
        self._held = self._locks.held
        self._lock = threading.Lock()
        self.name = name
        self.owner: int | None = None

    def lock(self) -> None:
        me = threading.get_ident()
        if self.owner == me:
            raise KernelBug(f"recursive locking of {self.name}")
        dep = self._locks.lockdep
        if dep is not None:
            dep.acquire(self)
        self._lock.acquire()
        self.owner = me
        self._held[id(self)] = self.name

    def trylock(self) -> bool:
        if not self._lock.acquire(blocking=False):
            return False
        self.owner = threading.get_ident()
        self._held[id(self)] = self.name
        dep = self._locks.lockdep
        if dep is not None:
            dep.held().append((id(self), lock_class_of(self), _stack()))  # (no order check)
        return True

    def unlock(self) -> None:
        if self.owner != threading.get_ident():
            raise KernelBug(f"unlock of {self.name} by a thread that does not hold it")
        self.owner = None
        self._held.pop(id(self), None)
        dep = self._locks.lockdep
        if dep is not None:
            dep.release(self)
        self._lock.release()

    @property
    def held(self) -> bool:
        """True when the calling thread holds the lock."""
        return self.owner == threading.get_ident()

    def assert_held(self) -> None:
        if self.owner != threading.get_ident():
            raise KernelBug(f"{self.name} must be held here")

    def __enter__(self) -> Mutex:
        # lock(), written out: ``with resv:`` is on every device DMA's path
        me = threading.get_ident()
        if self.owner == me:
            raise KernelBug(f"recursive locking of {self.name}")
        dep = self._locks.lockdep
        if dep is not None:
            dep.acquire(self)
        self._lock.acquire()
        self.owner = me
        self._held[id(self)] = self.name
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        # unlock(), written out (see __enter__)
        if self.owner != threading.get_ident():
            raise KernelBug(f"unlock of {self.name} by a thread that does not hold it")
        self.owner = None
        self._held.pop(id(self), None)
        dep = self._locks.lockdep
        if dep is not None:
            dep.release(self)
        self._lock.release()


class RwSem:
    """A reader/writer semaphore; writers are exclusive and recorded as owner."""

    __slots__ = ("_cond", "_held", "_locks", "_readers", "name", "writer")

    def __init__(self, kernel: KernelContext, name: str) -> None:
        self._locks = kernel.subsys(HeldLocks)
        self._held = self._locks.held
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self.name = name
        self.writer: int | None = None

    def down_write(self) -> None:
        me = threading.get_ident()
        dep = self._locks.lockdep
        if dep is not None and self.writer != me:
            dep.acquire(self)
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
        dep = self._locks.lockdep
        if dep is not None:
            dep.release(self)

    def down_read(self) -> None:
        dep = self._locks.lockdep
        if dep is not None and self.writer != threading.get_ident():
            dep.acquire(self)
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
        dep = self._locks.lockdep
        if dep is not None:
            dep.release(self)

    def assert_write_held(self) -> None:
        if self.writer != threading.get_ident():
            raise KernelBug(f"{self.name} must be held for write here")
