"""asm-generic/ioctls.h: the generic file ioctls the VFS handles itself (Linux 7.2).

``do_vfs_ioctl`` serves these before the driver's ``unlocked_ioctl`` sees the
call.  Only the ones the mock core implements are mirrored; the terminal
ioctls of the same header are left out.  x86-64 uses the asm-generic values.
"""

__all__ = [
    "FIOASYNC",
    "FIOCLEX",
    "FIONBIO",
    "FIONCLEX",
    "FIONREAD",
    "FIOQSIZE",
]

_HEADER = "asm/ioctls.h"

FIONREAD = 0x541B
FIONBIO = 0x5421
FIONCLEX = 0x5450
FIOCLEX = 0x5451
FIOASYNC = 0x5452
FIOQSIZE = 0x5460
