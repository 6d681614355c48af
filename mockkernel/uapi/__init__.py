"""Byte-exact mirrors of the userspace ABI headers (``/usr/include/...``).

Each module mirrors one header with the kernel's own names: constants are ints,
structs are ``ctypes.Structure`` subclasses laid out exactly as on x86-64, and
ioctl numbers come from :mod:`mockkernel.ioctl`.  ``tests/test_abi.py`` compiles
a C program against the real headers and checks every exported name.
"""
