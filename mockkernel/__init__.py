"""mockkernel: a simulated Linux kernel, in pure Python, that runs in-process.

Architecture, in the order a syscall meets it:

* :mod:`mockkernel.userspace.redirect` -- ``os``/``fcntl``/``mmap``/``open`` calls on
  mock fds and mock paths are routed to the kernel, everything else to the real OS;
* :mod:`mockkernel.process` -- processes, fd tables, the fd syscalls;
* :mod:`mockkernel.fs` / :mod:`mockkernel.vfs` -- ``File`` + ``FileOperations`` and the
  mock file tree (device nodes, sysfs, debugfs, procfs);
* :mod:`mockkernel.uaccess` -- reading the caller's memory safely;
* :mod:`mockkernel.dma_buf` -- the dma-buf core; :mod:`mockkernel.pci` -- PCI devices and
  TPH; drivers are plugins (:mod:`mockkernel.hookspecs`, :mod:`mockkernel.driver`);
* :mod:`mockkernel.trace` -- one structured event per state change.

Start with :func:`boot`::

    with mockkernel.boot() as kernel, kernel.installed():
        ...  # os.open("/dev/udmabuf"), fcntl.ioctl(...) reach the mock kernel

or the decorator :func:`with_kernel`, the pytest fixture ``mock_kernel``, or
``mockkernel.testing.MockKernelTestCase`` (docs/testing.md).
"""

from __future__ import annotations

from . import bytecache

bytecache.install()  # before anything else of ours is imported (see bytecache.py)

with bytecache.import_burst("import"):
    from .decorators import with_kernel
    from .errors import KernelBug, LeakError
    from .hookspecs import hookimpl
    from .kernel import Kernel
    from .lifecycle import boot

__all__ = ["Kernel", "KernelBug", "LeakError", "boot", "hookimpl", "with_kernel"]
__version__ = "0.1.0"
