"""Probe: the fd table with real fds only (pipes, /dev/null).

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers: only relations.
Standard library only; runs unprivileged.
"""
import ctypes
import fcntl
import os
import resource
import struct

from _probe import (
    FIOASYNC, FIOCLEX, FIONBIO, FIONCLEX, FIONREAD, TCGETS, call, cloexec, close_all, closed_fd,
    is_open, libc, lowest_free, run_all,
)

# --- constants ---------------------------------------------------------------

O_LARGEFILE_KERNEL = 0o100000  # x86-64 value; Python's os.O_LARGEFILE is 0


def dup3(oldfd, newfd, flags):
    r = libc.dup3(oldfd, newfd, flags)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


# --- steps -------------------------------------------------------------------


def open_gets_lowest_free():
    a = os.open("/dev/null", os.O_RDONLY)
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        os.close(a)
        c = os.open("/dev/null", os.O_RDONLY)
        try:
            return {"reopen_gets_closed_number": c == a, "second_open_is_higher": b > a}
        finally:
            os.close(c)
    finally:
        os.close(b)


def pipe_gets_lowest_free():
    low = lowest_free()
    r, w = os.pipe()
    try:
        return {"read_end_is_lowest_free": r == low, "write_end_above_read_end": w > r}
    finally:
        close_all(r, w)


def dup_lowest_free():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        low = lowest_free()
        d = os.dup(a)
        try:
            return {"dup_is_lowest_free": d == low, "cloexec": cloexec(d)}
        finally:
            os.close(d)
    finally:
        os.close(a)


def dup_gets_closed_number():
    a = os.open("/dev/null", os.O_RDONLY)
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        os.close(a)
        d = os.dup(b)
        try:
            return {"dup_gets_closed_number": d == a}
        finally:
            os.close(d)
    finally:
        os.close(b)


def dup_bad_fd():
    return os.dup(closed_fd())


def dup_negative_fd():
    return os.dup(-1)


def dup2_default_inheritable():
    a = os.open("/dev/null", os.O_RDONLY)
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        before = cloexec(b)
        r = os.dup2(a, b)
        return {"returns_newfd": r == b, "cloexec_before": before, "cloexec_after": cloexec(b)}
    finally:
        close_all(a, b)


def dup2_noninheritable():
    a = os.open("/dev/null", os.O_RDONLY)
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        fcntl.fcntl(b, fcntl.F_SETFD, 0)
        r = os.dup2(a, b, inheritable=False)
        return {"returns_newfd": r == b, "cloexec_after": cloexec(b)}
    finally:
        close_all(a, b)


def dup2_same_fd():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        before = cloexec(a)
        r = os.dup2(a, a)
        return {"returns_fd": r == a, "cloexec_before": before, "cloexec_after": cloexec(a)}
    finally:
        os.close(a)


def dup2_same_fd_closed():
    c = closed_fd()
    return os.dup2(c, c)


def dup2_replaces_open_target():
    a = os.open("/dev/null", os.O_RDONLY)
    r, w = os.pipe()
    try:
        res = os.dup2(a, r)
        return {
            "returns_newfd": res == r,
            "target_now_dev_null": os.readlink("/proc/self/fd/%d" % r) == "/dev/null",
            "write_end_still_open": is_open(w),
        }
    finally:
        close_all(a, r, w)


def dup2_onto_closed_number():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        c = closed_fd()
        r = os.dup2(a, c)
        try:
            return {"returns_newfd": r == c}
        finally:
            os.close(c)
    finally:
        os.close(a)


def dup2_bad_oldfd():
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        return os.dup2(closed_fd(), b)
    finally:
        os.close(b)


def dup2_bad_oldfd_target_survives():
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        return {"dup2": call(os.dup2, closed_fd(), b), "target_open": is_open(b)}
    finally:
        close_all(b)


def dup2_negative_newfd():
    # libc dup2, not os.dup2: CPython 3.11 answers a negative fd with the stale errno
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        r = libc.dup2(a, -1)
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return r
    finally:
        os.close(a)


def dup3_same_fd():
    # os.dup2(..., inheritable=False) is dup3(oldfd, newfd, O_CLOEXEC)
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        return os.dup2(a, a, inheritable=False)
    finally:
        os.close(a)


def dup3_same_fd_flags0():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        return dup3(a, a, 0)
    finally:
        os.close(a)


def dup3_bad_flags():
    a = os.open("/dev/null", os.O_RDONLY)
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        return dup3(a, b, os.O_NONBLOCK)
    finally:
        close_all(a, b)


def dup3_bad_oldfd():
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        return os.dup2(closed_fd(), b, inheritable=False)
    finally:
        os.close(b)


def dup3_cloexec_flag():
    a = os.open("/dev/null", os.O_RDONLY)
    b = os.open("/dev/null", os.O_RDONLY)
    try:
        fcntl.fcntl(b, fcntl.F_SETFD, 0)
        r = dup3(a, b, os.O_CLOEXEC)
        c1 = cloexec(b)
        r0 = dup3(a, b, 0)
        return {"returns_newfd": r == b and r0 == b, "cloexec_with_O_CLOEXEC": c1,
                "cloexec_with_0": cloexec(b)}
    finally:
        close_all(a, b)


def f_dupfd_min():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        minimum = 40
        d = fcntl.fcntl(a, fcntl.F_DUPFD, minimum)
        try:
            below_all_open = all(is_open(n) for n in range(minimum, d))
            return {"ge_min": d >= minimum, "lowest_free_ge_min": below_all_open,
                    "cloexec": cloexec(d)}
        finally:
            os.close(d)
    finally:
        os.close(a)


def f_dupfd_zero():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        low = lowest_free()
        d = fcntl.fcntl(a, fcntl.F_DUPFD, 0)
        try:
            return {"is_lowest_free": d == low, "cloexec": cloexec(d)}
        finally:
            os.close(d)
    finally:
        os.close(a)


def f_dupfd_cloexec():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        fcntl.fcntl(a, fcntl.F_SETFD, 0)
        low = lowest_free()
        d = fcntl.fcntl(a, fcntl.F_DUPFD_CLOEXEC, 0)
        try:
            return {"is_lowest_free": d == low, "cloexec": cloexec(d), "source_cloexec": cloexec(a)}
        finally:
            os.close(d)
    finally:
        os.close(a)


def f_dupfd_negative_min():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        return fcntl.fcntl(a, fcntl.F_DUPFD, -1)
    finally:
        os.close(a)


def f_dupfd_cloexec_negative_min():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        return fcntl.fcntl(a, fcntl.F_DUPFD_CLOEXEC, -1)
    finally:
        os.close(a)


def f_dupfd_bad_fd():
    return fcntl.fcntl(closed_fd(), fcntl.F_DUPFD, 0)


def f_getfd_setfd():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        out = {"after_open": fcntl.fcntl(a, fcntl.F_GETFD)}
        for v in (0, 1, 2, 3, 0xFF):
            r = fcntl.fcntl(a, fcntl.F_SETFD, v)
            out["setfd_%d_returns" % v] = r
            out["getfd_after_setfd_%d" % v] = fcntl.fcntl(a, fcntl.F_GETFD)
        return out
    finally:
        os.close(a)


def f_getfd_bad_fd():
    return fcntl.fcntl(closed_fd(), fcntl.F_GETFD)


def f_getfl_dev_null():
    out = {}
    for name, flags in (("O_RDONLY", os.O_RDONLY), ("O_WRONLY", os.O_WRONLY),
                        ("O_RDWR", os.O_RDWR), ("O_RDWR|O_NONBLOCK", os.O_RDWR | os.O_NONBLOCK),
                        ("O_WRONLY|O_APPEND", os.O_WRONLY | os.O_APPEND),
                        ("O_RDWR|O_CLOEXEC", os.O_RDWR | os.O_CLOEXEC)):
        fd = os.open("/dev/null", flags)
        try:
            out[name] = oct(fcntl.fcntl(fd, fcntl.F_GETFL))
        finally:
            os.close(fd)
    return out


def f_getfl_pipe():
    r, w = os.pipe2(os.O_NONBLOCK)
    r2, w2 = os.pipe()
    try:
        return {"read_nonblock": oct(fcntl.fcntl(r, fcntl.F_GETFL)),
                "write_nonblock": oct(fcntl.fcntl(w, fcntl.F_GETFL)),
                "read": oct(fcntl.fcntl(r2, fcntl.F_GETFL)),
                "write": oct(fcntl.fcntl(w2, fcntl.F_GETFL))}
    finally:
        close_all(r, w, r2, w2)


def f_setfl_dev_null():
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        out = {}
        for name, v in (("O_NONBLOCK", os.O_NONBLOCK), ("O_APPEND", os.O_APPEND),
                        ("O_WRONLY_ignored", os.O_WRONLY), ("O_ASYNC", os.O_ASYNC),
                        ("0", 0)):
            out["setfl_%s_returns" % name] = fcntl.fcntl(fd, fcntl.F_SETFL, v)
            out["getfl_after_%s" % name] = oct(fcntl.fcntl(fd, fcntl.F_GETFL))
        return out
    finally:
        os.close(fd)


def fcntl_unknown_cmd():
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        return fcntl.fcntl(fd, 9999)
    finally:
        os.close(fd)


def fcntl_unknown_cmd_bad_fd():
    return fcntl.fcntl(closed_fd(), 9999)


def close_bad_fd():
    os.close(closed_fd())


def close_negative_fd():
    os.close(-1)


def close_twice():
    fd = os.open("/dev/null", os.O_RDONLY)
    os.close(fd)
    os.close(fd)


def fioclex_fionclex():
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFD, 0)
        r1 = fcntl.ioctl(fd, FIOCLEX)
        after_clex = fcntl.fcntl(fd, fcntl.F_GETFD)
        r2 = fcntl.ioctl(fd, FIONCLEX)
        after_nclex = fcntl.fcntl(fd, fcntl.F_GETFD)
        return {"fioclex_returns": r1, "getfd_after_fioclex": after_clex,
                "fionclex_returns": r2, "getfd_after_fionclex": after_nclex}
    finally:
        os.close(fd)


def fionbio():
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        on = bytearray(struct.pack("i", 1))
        r1 = fcntl.ioctl(fd, FIONBIO, on)
        fl_on = oct(fcntl.fcntl(fd, fcntl.F_GETFL))
        r_big = fcntl.ioctl(fd, FIONBIO, bytearray(struct.pack("i", 2)))
        fl_big = oct(fcntl.fcntl(fd, fcntl.F_GETFL))
        off = bytearray(struct.pack("i", 0))
        r2 = fcntl.ioctl(fd, FIONBIO, off)
        fl_off = oct(fcntl.fcntl(fd, fcntl.F_GETFL))
        return {"on_returns": r1, "getfl_after_on": fl_on,
                "value_2_returns": r_big, "getfl_after_value_2": fl_big,
                "off_returns": r2, "getfl_after_off": fl_off}
    finally:
        os.close(fd)


def fionbio_bad_pointer():
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        return fcntl.ioctl(fd, FIONBIO, 16)
    finally:
        os.close(fd)


def fioasync_dev_null():
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        return fcntl.ioctl(fd, FIOASYNC, bytearray(struct.pack("i", 1)))
    finally:
        os.close(fd)


def fionread_pipe():
    r, w = os.pipe()
    try:
        os.write(w, b"hello")
        buf = bytearray(struct.pack("i", -1))
        ret = fcntl.ioctl(r, FIONREAD, buf)
        return {"returns": ret, "value": struct.unpack("i", buf)[0]}
    finally:
        close_all(r, w)


def fionread_dev_null():
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        return fcntl.ioctl(fd, FIONREAD, bytearray(4))
    finally:
        os.close(fd)


def ioctl_bad_fd_fionbio():
    return fcntl.ioctl(closed_fd(), FIONBIO, bytearray(struct.pack("i", 1)))


def ioctl_bad_fd_fioclex():
    return fcntl.ioctl(closed_fd(), FIOCLEX)


def ioctl_bad_fd_unknown():
    return fcntl.ioctl(closed_fd(), 0x12345678 & 0x7FFFFFFF)


def ioctl_negative_fd():
    return fcntl.ioctl(-1, FIONBIO, bytearray(4))


def ioctl_unknown_dev_null():
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        return fcntl.ioctl(fd, 0x40046200)
    finally:
        os.close(fd)


def ioctl_tcgets_dev_null():
    fd = os.open("/dev/null", os.O_RDWR)
    try:
        return {"ioctl": call(fcntl.ioctl, fd, TCGETS, bytearray(64)), "isatty": os.isatty(fd)}
    finally:
        os.close(fd)


def ioctl_unknown_pipe():
    r, w = os.pipe()
    try:
        return fcntl.ioctl(r, 0x40046200)
    finally:
        close_all(r, w)


def rlimit_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        low = lowest_free()
        # all numbers >= low are free only if nothing is open above low
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
        try:
            out = {
                "dup": call(os.dup, a),
                "open": call(os.open, "/dev/null", os.O_RDONLY),
                "pipe": call(os.pipe),
                "f_dupfd_0": call(fcntl.fcntl, a, fcntl.F_DUPFD, 0),
                "f_dupfd_at_limit": call(fcntl.fcntl, a, fcntl.F_DUPFD, low),
                "f_dupfd_cloexec_at_limit": call(fcntl.fcntl, a, fcntl.F_DUPFD_CLOEXEC, low),
                "dup2_at_limit": call(os.dup2, a, low),
                "dup3_at_limit": call(os.dup2, a, low, False),
            }
            return out
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    finally:
        os.close(a)


def rlimit_nofile_restored():
    a = os.open("/dev/null", os.O_RDONLY)
    try:
        d = os.dup(a)
        os.close(d)
        return True
    finally:
        os.close(a)


def main():
    steps = [
        ("open_gets_lowest_free", open_gets_lowest_free),
        ("pipe_gets_lowest_free", pipe_gets_lowest_free),
        ("dup_lowest_free", dup_lowest_free),
        ("dup_gets_closed_number", dup_gets_closed_number),
        ("dup_bad_fd", dup_bad_fd),
        ("dup_negative_fd", dup_negative_fd),
        ("dup2_default_inheritable", dup2_default_inheritable),
        ("dup2_noninheritable", dup2_noninheritable),
        ("dup2_same_fd", dup2_same_fd),
        ("dup2_same_fd_closed", dup2_same_fd_closed),
        ("dup2_replaces_open_target", dup2_replaces_open_target),
        ("dup2_onto_closed_number", dup2_onto_closed_number),
        ("dup2_bad_oldfd", dup2_bad_oldfd),
        ("dup2_bad_oldfd_target_survives", dup2_bad_oldfd_target_survives),
        ("dup2_negative_newfd", dup2_negative_newfd),
        ("dup3_same_fd", dup3_same_fd),
        ("dup3_same_fd_flags0", dup3_same_fd_flags0),
        ("dup3_bad_flags", dup3_bad_flags),
        ("dup3_bad_oldfd", dup3_bad_oldfd),
        ("dup3_cloexec_flag", dup3_cloexec_flag),
        ("f_dupfd_min", f_dupfd_min),
        ("f_dupfd_zero", f_dupfd_zero),
        ("f_dupfd_cloexec", f_dupfd_cloexec),
        ("f_dupfd_negative_min", f_dupfd_negative_min),
        ("f_dupfd_cloexec_negative_min", f_dupfd_cloexec_negative_min),
        ("f_dupfd_bad_fd", f_dupfd_bad_fd),
        ("f_getfd_setfd", f_getfd_setfd),
        ("f_getfd_bad_fd", f_getfd_bad_fd),
        ("f_getfl_dev_null", f_getfl_dev_null),
        ("f_getfl_pipe", f_getfl_pipe),
        ("f_setfl_dev_null", f_setfl_dev_null),
        ("fcntl_unknown_cmd", fcntl_unknown_cmd),
        ("fcntl_unknown_cmd_bad_fd", fcntl_unknown_cmd_bad_fd),
        ("close_bad_fd", close_bad_fd),
        ("close_negative_fd", close_negative_fd),
        ("close_twice", close_twice),
        ("fioclex_fionclex", fioclex_fionclex),
        ("fionbio", fionbio),
        ("fionbio_bad_pointer", fionbio_bad_pointer),
        ("fioasync_dev_null", fioasync_dev_null),
        ("fionread_pipe", fionread_pipe),
        ("fionread_dev_null", fionread_dev_null),
        ("ioctl_bad_fd_fionbio", ioctl_bad_fd_fionbio),
        ("ioctl_bad_fd_fioclex", ioctl_bad_fd_fioclex),
        ("ioctl_bad_fd_unknown", ioctl_bad_fd_unknown),
        ("ioctl_negative_fd", ioctl_negative_fd),
        ("ioctl_unknown_dev_null", ioctl_unknown_dev_null),
        ("ioctl_tcgets_dev_null", ioctl_tcgets_dev_null),
        ("ioctl_unknown_pipe", ioctl_unknown_pipe),
        ("rlimit_nofile", rlimit_nofile),
        ("rlimit_nofile_restored", rlimit_nofile_restored),
    ]
    run_all(steps)


if __name__ == "__main__":
    main()
