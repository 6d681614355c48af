"""Signal delivery at syscall boundaries: a mock syscall is atomic for Python handlers.

Linux runs a signal handler only on the way back to userspace (or ends an
*interruptible* wait with ``EINTR`` first); a syscall is never cut in half.  CPython
runs a Python-level handler in the main thread between any two bytecodes, so without
help a ``KeyboardInterrupt`` raised by a handler can land in the middle of the mock
kernel: between taking a lock and the ``try`` that releases it, between installing an fd
and returning it, ...

While a redirection is installed, every Python-level handler of the program (those set
before installation, ``signal.default_int_handler`` included, and those the program
sets later through ``signal.signal``) runs through :class:`SignalDeferral`'s wrapper,
which looks at the interrupted frame chain:

* no syscall on the chain (the program's own code; a front-end in ``userspace/`` about
  to enter the kernel, or blocked in a *real* call on the program's behalf -- a real
  ``read`` of a pipe, the real ``select`` a mock ``poll`` sleeps in: an interruptible
  wait) -> the handler runs at once, as before;
* a syscall on the chain -> the handler is queued and runs when the outermost syscall
  frame returns (normally or with its ``OSError``): a profile hook, set only for that
  window, watches for that frame's ``return`` event and runs the queued handlers there.
  An exception a handler raises replaces the syscall's result, as a handler that raises
  right after a real ``os.open`` returned does in CPython.

The outermost syscall frame is the outermost frame that is either ``Process.sys_*``
(the ``_syscall`` wrapper: direct calls from tests or a supervisor), the first
kernel-side frame a front-end called (the hot path calls a driver's ioctl handler
without ``sys_ioctl``), or the program's call into a front-end that stands for one
atomic C function (``ATOMIC_MODULES``: ``mmap.mmap`` makes several syscalls).

The cost outside a signal is nil: nothing runs on the syscall path; all the work is in
the wrapper, when a signal arrives.  The kernel waits that Linux makes interruptible
(a fence wait with ``intr``) are uninterruptible here: the handler runs when they end.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # signal's C half: ints, no enums
import contextlib
import signal
import sys
import threading
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any

__all__ = ["SignalDeferral", "syscall_frame"]

#: modules of the in-process front-end (the C library's side of the syscall boundary)
FRONT_END_MODULES = frozenset(
    "mockkernel.userspace." + m
    for m in (
        "hotpath",
        "fdcalls",
        "fileio",
        "ioctl",
        "mmap",
        "paths",
        "poll",
        "sockets",
        "redirect",
    )
)

#: modules whose calls from outside stand for one atomic C function of CPython:
#: ``mmap.mmap`` (dups the fd, maps, keeps the dup) and a map's ``close``/collection
#: (``munmap``: its finalizer drops the file; a handler between the two leaked it)
ATOMIC_MODULES = frozenset({"mockkernel.userspace.mmap", "mockkernel.mm"})

_Handler = Callable[[int, FrameType | None], Any]

#: the signal numbers this platform has (``signal.valid_signals()``, as ints, once)
_VALID_SIGNALS: tuple[int, ...] = tuple(sorted(_signal.valid_signals()))


def _syscall_code() -> CodeType:
    from ..process import Process

    code: CodeType = Process.sys_close.__code__
    return code


def syscall_frame(frame: FrameType | None, entry: CodeType) -> FrameType | None:
    """The outermost syscall frame on ``frame``'s chain (see the module), or None.

    ``entry`` is the code of ``Process.sys_*`` (the ``_syscall`` wrapper).  The walk ends
    at a frame of this module: what is above it was judged already (a handler runs from
    here only outside a syscall, or after the syscall returned).
    """
    found: FrameType | None = None
    callee: FrameType | None = None  # the frame ``f`` called
    callee_kernel = False
    f = frame
    while f is not None and f.f_globals.get("__name__") != __name__:
        module = f.f_globals.get("__name__")
        front = module in FRONT_END_MODULES
        back = f.f_back
        if f.f_code is entry:
            found = f
        elif module in ATOMIC_MODULES and (
            back is None or back.f_globals.get("__name__") != module
        ):
            found = f  # the program's call of an atomic front-end
        elif front and callee is not None and callee_kernel:
            found = callee  # the first kernel-side frame this front-end called
        callee, callee_kernel = f, not front
        f = back
    return found


class SignalDeferral:
    """Wraps the program's Python signal handlers for one installed redirection."""

    def __init__(self) -> None:
        self._entry = _syscall_code()
        #: original handler by signal number, for the signals whose handler we wrapped
        self._wrapped: dict[int, _Handler] = {}
        self._pending: list[tuple[_Handler, int]] = []
        self._window: FrameType | None = None
        self._saved_profile: Any = None
        self._real_signal = signal.signal
        self._real_getsignal = signal.getsignal
        self.installed = False
        #: signals delivered late (at a syscall's end), for tests and the stress numbers
        self.deferred = 0

    # -- install ----------------------------------------------------------------------
    def install(self) -> None:
        """Wrap every Python handler now set; route ``signal.signal``/``getsignal``.
        Only the main thread may set handlers: from another thread this does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return
        # the C module's view first (plain ints, no enum per signal: this runs at every
        # install); only a signal with a Python handler asks ``getsignal`` as routed now
        getsignal = _signal.getsignal
        for sig in [sig for sig in _VALID_SIGNALS if callable(getsignal(sig))]:
            try:
                handler = self._real_getsignal(sig)
            except (ValueError, OSError):
                continue
            if callable(handler):
                self._wrap(sig, handler)
        signal.signal = self._signal  # type: ignore[assignment]
        signal.getsignal = self._getsignal  # type: ignore[assignment]
        self.installed = True

    def uninstall(self) -> None:
        if not self.installed:
            return
        signal.signal = self._real_signal
        signal.getsignal = self._real_getsignal
        for sig, handler in self._wrapped.items():
            with contextlib.suppress(ValueError, OSError):
                _signal.signal(sig, handler)  # (the C call: no enum conversions)
        self._wrapped.clear()
        self.installed = False

    def _wrap(self, sig: int, handler: _Handler) -> None:
        def deliver(signum: int, frame: FrameType | None) -> Any:
            return self._deliver(handler, signum, frame)

        _signal.signal(sig, deliver)  # (the C call: no enum conversions, every install)
        self._wrapped[sig] = handler

    def _signal(self, sig: int, handler: Any) -> Any:
        """``signal.signal`` while installed: the program's handler is wrapped."""
        old = self._getsignal(sig)
        if callable(handler):
            self._wrap(sig, handler)
        else:
            self._real_signal(sig, handler)
            self._wrapped.pop(sig, None)
        return old

    def _getsignal(self, sig: int) -> Any:
        if sig in self._wrapped:
            return self._wrapped[sig]
        return self._real_getsignal(sig)

    def pending_here(self) -> bool:
        """``signal_pending(current)`` for the in-process task (``mockkernel/wait.py``):
        a handler is queued while the main thread sleeps in a syscall (only the main
        thread runs Python handlers; other threads never see one)."""
        return bool(self._pending) and threading.current_thread() is threading.main_thread()

    # -- delivery ---------------------------------------------------------------------
    def _deliver(self, handler: _Handler, signum: int, frame: FrameType | None) -> Any:
        window = self._window
        if window is None:
            window = syscall_frame(frame, self._entry)
            if window is None:
                return handler(signum, frame)
            saved = sys.getprofile()
            self._saved_profile = None if getattr(saved, "__self__", None) is self else saved
            self._window = window
            sys.setprofile(self._profile)
        self._pending.append((handler, signum))
        self.deferred += 1
        return None

    def _profile(self, frame: FrameType, event: str, arg: Any) -> None:
        saved = self._saved_profile
        if saved is not None:
            saved(frame, event, arg)
        if event == "return" and frame is self._window:
            self._end_window(frame.f_back)

    def _end_window(self, back: FrameType | None) -> None:
        """The syscall returned: run what was queued; the first exception raised wins
        (it replaces the syscall's result), the other handlers still run."""
        pending, self._pending = self._pending, []
        saved, self._saved_profile = self._saved_profile, None
        self._window = None
        sys.setprofile(saved)
        first: BaseException | None = None
        for handler, signum in pending:
            try:
                handler(signum, back)
            except BaseException as e:  # (re-raised below)
                if first is None:
                    first = e
        if first is not None:
            raise first
