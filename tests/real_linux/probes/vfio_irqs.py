"""Probe: VFIO_DEVICE_SET_IRQS on a vfio-pci device fd (edu and ivshmem-plain).

The core checks of ``vfio_set_irqs_validate_and_prepare`` (argsz, flag bits, index,
start/count against the index's IRQ count, the data size), the per-index handlers of
``vfio_pci_set_irqs_ioctl`` (INTx trigger/mask/unmask, MSI and MSI-X trigger, ERR and
REQ triggers): eventfds registered, replaced and unregistered, bad eventfds, loopback
triggers (DATA_NONE / DATA_BOOL: the kernel signals the registered eventfd, read here
in non-blocking mode), IRQ-type conflicts, the MSI enable bit of the config region
before, during and after MSI is enabled, and what survives VFIO_DEVICE_RESET and a
close of the device fd.

edu has INTx and one MSI vector; ivshmem-plain has neither (GET_IRQ_INFO counts 0), so
most of its steps are the count checks.  Steps are prefixed with the device kind.
Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers.  Standard library only.  On
real Linux the group nodes are 0600 root:root, so the golden run is as root.
"""
import fcntl
import os
import struct

from _probe import (
    VFIO_DEVICE_RESET, VFIO_DEVICE_SET_IRQS, Res, call, cfg_read, cfg_write, find_devices,
    ioctl_buf, open_device, run_all, with_device,
)

# struct vfio_irq_set {u32 argsz, flags, index, start, count; u8 data[]}  20 B
IRQ_SET_FMT = "=IIIII"
MINSZ = 20
DATA_NONE = 1 << 0
DATA_BOOL = 1 << 1
DATA_EVENTFD = 1 << 2
ACTION_MASK = 1 << 3
ACTION_UNMASK = 1 << 4
ACTION_TRIGGER = 1 << 5
INTX, MSI, MSIX, ERR, REQ = range(5)
MSI_FLAGS = 0x42  # edu: MSI capability at 0x40
MSI_FLAGS_ENABLE = 0x1


def set_irqs(d, flags, index, start=0, count=1, data=b"", argsz=None):
    if argsz is None:
        argsz = MINSZ + len(data)
    payload = struct.pack(IRQ_SET_FMT, argsz, flags, index, start, count) + bytes(data)
    ret, _ = ioctl_buf(d, VFIO_DEVICE_SET_IRQS, payload + bytes(16))
    return ret


def fds(*values):
    return struct.pack("=%di" % len(values), *values)


def efd(r):
    return r.fd(os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC))


def count(fd):
    """The eventfd's counter (read resets it); 0 when nothing was signalled."""
    try:
        return struct.unpack("=Q", os.read(fd, 8))[0]
    except BlockingIOError:
        return 0


def reg(d, index, fd, start=0):
    return set_irqs(d, DATA_EVENTFD | ACTION_TRIGGER, index, start, 1, fds(fd))


def disable(d, index):
    return call(set_irqs, d, DATA_NONE | ACTION_TRIGGER, index, 0, 0)


def trig(d, index, start=0, n=1):
    return call(set_irqs, d, DATA_NONE | ACTION_TRIGGER, index, start, n)


def raw(flags, index, start=0, n=1, data=b"", argsz=None):
    def fn(r, dev, d):
        return set_irqs(d, flags, index, start, n, data, argsz)
    return fn


# -- eventfd registration and loopback triggers ----------------------------------------
def trigger_cycle(index):
    """Register an eventfd, trigger with NONE and BOOL 1/0, unregister, trigger again."""
    def fn(r, dev, d):
        e = efd(r)
        out = {"register": call(reg, d, index, e)}
        out["none"] = trig(d, index)
        out["after_none"] = count(e)
        out["bool_1"] = call(set_irqs, d, DATA_BOOL | ACTION_TRIGGER, index, 0, 1, b"\1")
        out["after_bool_1"] = count(e)
        out["bool_0"] = call(set_irqs, d, DATA_BOOL | ACTION_TRIGGER, index, 0, 1, b"\0")
        out["after_bool_0"] = count(e)
        out["twice"] = [trig(d, index), trig(d, index)]
        out["after_twice"] = count(e)
        out["unregister"] = call(reg, d, index, -1)
        out["none_after_unregister"] = trig(d, index)
        out["after_unregister"] = count(e)
        out["disable"] = disable(d, index)
        out["disable_again"] = disable(d, index)
        return out
    return fn


def replace(index):
    def fn(r, dev, d):
        a, b = efd(r), efd(r)
        out = {"a": call(reg, d, index, a), "b": call(reg, d, index, b), "none": trig(d, index)}
        out["counts"] = [count(a), count(b)]
        out["disable"] = disable(d, index)
        return out
    return fn


def bad_fd(index, kind):
    def fn(r, dev, d):
        if kind == "closed":
            fd = os.eventfd(0)
            os.close(fd)
        elif kind == "pipe":
            fd = r.fd(os.pipe()[0])
        else:
            fd = d
        out = {"register": call(reg, d, index, fd)}
        out["disable"] = disable(d, index)
        return out
    return fn


def negative_fd(index, value):
    def fn(r, dev, d):
        out = {"register": call(reg, d, index, value)}
        out["trigger"] = trig(d, index)
        out["disable"] = disable(d, index)
        out["disable_again"] = disable(d, index)
        return out
    return fn


def single_none_unregistered(index, n):
    def fn(r, dev, d):
        return set_irqs(d, DATA_NONE | ACTION_TRIGGER, index, 0, n)
    return fn


def eventfd_count0(index):
    def fn(r, dev, d):
        return set_irqs(d, DATA_EVENTFD | ACTION_TRIGGER, index, 0, 0)
    return fn


def argsz_large(index):
    def fn(r, dev, d):
        e = efd(r)
        out = {"register": call(set_irqs, d, DATA_EVENTFD | ACTION_TRIGGER, index, 0, 1,
                                fds(e) + bytes(12), 64)}
        out["none"] = trig(d, index)
        out["count"] = count(e)
        out["disable"] = disable(d, index)
        return out
    return fn


# -- INTx masking -------------------------------------------------------------------------
def intx_mask(r, dev, d):
    e = efd(r)
    out = {"mask_before_enable": call(set_irqs, d, DATA_NONE | ACTION_MASK, INTX),
           "unmask_before_enable": call(set_irqs, d, DATA_NONE | ACTION_UNMASK, INTX)}
    out["register"] = call(reg, d, INTX, e)
    out["mask"] = call(set_irqs, d, DATA_NONE | ACTION_MASK, INTX)
    out["mask_again"] = call(set_irqs, d, DATA_NONE | ACTION_MASK, INTX)
    out["trigger_masked"] = trig(d, INTX)
    out["count_masked"] = count(e)
    out["unmask"] = call(set_irqs, d, DATA_NONE | ACTION_UNMASK, INTX)
    out["count_after_unmask"] = count(e)
    out["unmask_again"] = call(set_irqs, d, DATA_NONE | ACTION_UNMASK, INTX)
    out["mask_bool_1"] = call(set_irqs, d, DATA_BOOL | ACTION_MASK, INTX, 0, 1, b"\1")
    out["unmask_bool_0"] = call(set_irqs, d, DATA_BOOL | ACTION_UNMASK, INTX, 0, 1, b"\0")
    out["unmask_bool_1"] = call(set_irqs, d, DATA_BOOL | ACTION_UNMASK, INTX, 0, 1, b"\1")
    out["mask_count_0"] = call(set_irqs, d, DATA_NONE | ACTION_MASK, INTX, 0, 0)
    out["mask_eventfd"] = call(set_irqs, d, DATA_EVENTFD | ACTION_MASK, INTX, 0, 1, fds(e))
    u = efd(r)
    out["unmask_eventfd"] = call(set_irqs, d, DATA_EVENTFD | ACTION_UNMASK, INTX, 0, 1, fds(u))
    out["unmask_eventfd_off"] = call(set_irqs, d, DATA_EVENTFD | ACTION_UNMASK, INTX, 0, 1,
                                     fds(-1))
    out["count_end"] = count(e)
    out["disable"] = disable(d, INTX)
    out["mask_after_disable"] = call(set_irqs, d, DATA_NONE | ACTION_MASK, INTX)
    return out


def intx_unmask_fd(r, dev, d):
    """The resample (unmask) eventfd: a second one is EBUSY, bad fds as eventfd_ctx_fdget."""
    e, u, v = efd(r), efd(r), efd(r)
    out = {"register": call(reg, d, INTX, e)}
    unmask = DATA_EVENTFD | ACTION_UNMASK
    closed = os.eventfd(0)
    os.close(closed)
    out["closed"] = call(set_irqs, d, unmask, INTX, 0, 1, fds(closed))
    out["device"] = call(set_irqs, d, unmask, INTX, 0, 1, fds(d))
    out["first"] = call(set_irqs, d, unmask, INTX, 0, 1, fds(u))
    out["second"] = call(set_irqs, d, unmask, INTX, 0, 1, fds(v))
    out["second_closed"] = call(set_irqs, d, unmask, INTX, 0, 1, fds(closed))
    out["off"] = call(set_irqs, d, unmask, INTX, 0, 1, fds(-1))
    out["off_again"] = call(set_irqs, d, unmask, INTX, 0, 1, fds(-5))
    out["again"] = call(set_irqs, d, unmask, INTX, 0, 1, fds(v))
    out["disable"] = disable(d, INTX)
    out["counts"] = [count(e), count(u), count(v)]
    return out


def bad_pointer(r, dev, d):
    return fcntl.ioctl(d, VFIO_DEVICE_SET_IRQS, 16)


def msi_mask(action):
    def fn(r, dev, d):
        e = efd(r)
        out = {"before": call(set_irqs, d, DATA_NONE | action, MSI)}
        out["register"] = call(reg, d, MSI, e)
        out["enabled"] = call(set_irqs, d, DATA_NONE | action, MSI)
        out["disable"] = disable(d, MSI)
        return out
    return fn


# -- IRQ type conflicts and the MSI enable bit ------------------------------------------
def conflicts(r, dev, d):
    a, b = efd(r), efd(r)
    out = {"intx": call(reg, d, INTX, a), "msi_while_intx": call(reg, d, MSI, b),
           "msi_disable_while_intx": disable(d, MSI)}
    out["intx_disable"] = disable(d, INTX)
    out["msi"] = call(reg, d, MSI, b)
    out["intx_while_msi"] = call(reg, d, INTX, a)
    out["intx_trigger_while_msi"] = trig(d, INTX)
    out["intx_disable_while_msi"] = disable(d, INTX)
    out["msix_while_msi"] = call(reg, d, MSIX, a)
    out["msi_disable"] = disable(d, MSI)
    out["counts"] = [count(a), count(b)]
    return out


def has_msi_cap(d):
    """edu: the capability list starts with MSI at 0x40; ivshmem-plain has no capability
    (0x42 is then a raw byte the device keeps: never written here)."""
    return bool(cfg_read(d, 0x06, 2) & 0x10) and cfg_read(d, 0x34, 1) == 0x40 and \
        cfg_read(d, 0x40, 1) == 0x05


def msi_flags(d):
    if not has_msi_cap(d):
        return None
    return hex(cfg_read(d, MSI_FLAGS, 2))


def write_enable(d):
    if not has_msi_cap(d):
        return None
    cfg_write(d, MSI_FLAGS, 2, cfg_read(d, MSI_FLAGS, 2) | MSI_FLAGS_ENABLE)
    return msi_flags(d)


def msi_enable_bit(r, dev, d):
    e = efd(r)
    out = {"initial": msi_flags(d), "write_enable_before": write_enable(d)}
    out["register"] = call(reg, d, MSI, e)
    out["after_register"] = msi_flags(d)
    out["write_enable_during"] = write_enable(d)
    if has_msi_cap(d):
        cfg_write(d, MSI_FLAGS, 2, cfg_read(d, MSI_FLAGS, 2) | 0x70)
    out["write_qsize_during"] = msi_flags(d)
    out["unregister_vector"] = call(reg, d, MSI, -1)
    out["after_unregister_vector"] = msi_flags(d)
    out["disable"] = disable(d, MSI)
    out["after_disable"] = msi_flags(d)
    out["write_enable_after"] = write_enable(d)
    return out


def msi_enable_no_fd(r, dev, d):
    """fd -1 with MSI not enabled still enables MSI (vfio_msi_enable, then no vector)."""
    e = efd(r)
    out = {"register_minus_1": call(reg, d, MSI, -1), "intx": call(reg, d, INTX, e)}
    out["write_enable"] = write_enable(d)
    out["trigger"] = trig(d, MSI)
    out["count"] = count(e)
    out["disable"] = disable(d, MSI)
    out["disable_again"] = disable(d, MSI)
    return out


# -- reset and close ----------------------------------------------------------------------
def across_reset(index):
    def fn(r, dev, d):
        e = efd(r)
        out = {"register": call(reg, d, index, e)}
        out["reset"] = call(fcntl.ioctl, d, VFIO_DEVICE_RESET)
        out["trigger"] = trig(d, index)
        out["count"] = count(e)
        if index == MSI:
            out["write_enable"] = write_enable(d)
        out["disable"] = disable(d, index)
        return out
    return fn


def across_close(index):
    def step():
        with Res() as r:
            e = efd(r)
            c, g, d = open_device(r, dev_of[0])
            out = {"register": call(reg, d, index, e)}
            r.close(d)
            r.close(g)
            r.close(c)
            out["count_after_close"] = count(e)
            c, g, d = open_device(r, dev_of[0])
            out["disable_after_reopen"] = disable(d, index)
            out["trigger_after_reopen"] = trig(d, index)
            out["count_after_reopen"] = count(e)
            out["register_again"] = call(reg, d, index, e)
            out["disable"] = disable(d, index)
            return out
    return step


dev_of = [None]
steps = []
for kind, dev in sorted(find_devices().items()):
    def add(name, fn):
        steps.append((kind + "_" + name, with_device(dev, fn)))

    N = DATA_NONE | ACTION_TRIGGER
    add("argsz_0", raw(N, INTX, 0, 0, argsz=0))
    add("argsz_19", raw(N, INTX, 0, 0, argsz=19))
    add("argsz_19_req", raw(N, REQ, 0, 1, argsz=19))
    add("flags_unknown_bit", raw(N | 1 << 6, REQ))
    add("flags_high_bit", raw(N | 1 << 31, REQ))
    add("flags_no_data_type", raw(ACTION_TRIGGER, REQ))
    add("flags_two_data_types", raw(N | DATA_BOOL, REQ, data=b"\1"))
    add("flags_no_action", raw(DATA_NONE, REQ))
    add("flags_no_action_intx", raw(DATA_NONE, INTX))
    add("flags_two_actions", raw(DATA_NONE | ACTION_MASK | ACTION_UNMASK, INTX))
    add("flags_trigger_and_mask", raw(N | ACTION_MASK, REQ))
    add("index_5", raw(N, 5))
    add("index_0xffffffff", raw(N, 0xFFFFFFFF))
    add("index_5_argsz_0", raw(N, 5, argsz=0))
    add("req_start_1", raw(N, REQ, 1, 0))
    add("req_count_2", raw(N, REQ, 0, 2))
    add("req_count_overflow", raw(N, REQ, 1, 0xFFFFFFFF))
    add("req_bool_argsz_short", raw(DATA_BOOL | ACTION_TRIGGER, REQ, argsz=MINSZ))
    add("req_eventfd_argsz_short", raw(DATA_EVENTFD | ACTION_TRIGGER, REQ, data=fds(-1),
                                       argsz=MINSZ + 3))
    add("req_bool_count_0", raw(DATA_BOOL | ACTION_TRIGGER, REQ, 0, 0))
    add("req_eventfd_count_0", eventfd_count0(REQ))
    add("req_none_unregistered", single_none_unregistered(REQ, 1))
    add("req_none_count_0_unregistered", single_none_unregistered(REQ, 0))
    add("req_mask", raw(DATA_NONE | ACTION_MASK, REQ))
    add("req_unmask", raw(DATA_NONE | ACTION_UNMASK, REQ))
    add("req_trigger_cycle", trigger_cycle(REQ))
    add("req_replace", replace(REQ))
    add("req_argsz_large", argsz_large(REQ))
    add("req_fd_closed", bad_fd(REQ, "closed"))
    add("req_fd_pipe", bad_fd(REQ, "pipe"))
    add("req_fd_device", bad_fd(REQ, "device"))
    add("req_fd_minus_2", negative_fd(REQ, -2))
    add("err_trigger", raw(N, ERR, 0, 0))
    add("err_eventfd", raw(DATA_EVENTFD | ACTION_TRIGGER, ERR, data=fds(-1)))
    add("intx_count_0_not_enabled", raw(N, INTX, 0, 0))
    add("intx_start_1", raw(N, INTX, 1, 0))
    add("intx_count_2", raw(N, INTX, 0, 2))
    add("intx_none_not_enabled", raw(N, INTX))
    add("intx_bool_count_0", raw(DATA_BOOL | ACTION_TRIGGER, INTX, 0, 0))
    add("intx_trigger_cycle", trigger_cycle(INTX))
    add("intx_replace", replace(INTX))
    add("intx_argsz_large", argsz_large(INTX))
    add("intx_fd_closed", bad_fd(INTX, "closed"))
    add("intx_fd_pipe", bad_fd(INTX, "pipe"))
    add("intx_fd_device", bad_fd(INTX, "device"))
    add("intx_fd_minus_2", negative_fd(INTX, -2))
    add("intx_mask", intx_mask)
    add("intx_unmask_fd", intx_unmask_fd)
    add("bad_pointer", bad_pointer)
    add("msi_count_0_not_enabled", raw(N, MSI, 0, 0))
    add("msi_count_2", raw(DATA_EVENTFD | ACTION_TRIGGER, MSI, 0, 2, fds(-1, -1)))
    add("msi_start_1", raw(N, MSI, 1, 0))
    add("msi_none_not_enabled", raw(N, MSI))
    add("msi_trigger_cycle", trigger_cycle(MSI))
    add("msi_replace", replace(MSI))
    add("msi_fd_closed", bad_fd(MSI, "closed"))
    add("msi_fd_pipe", bad_fd(MSI, "pipe"))
    add("msi_fd_device", bad_fd(MSI, "device"))
    add("msi_fd_minus_2", negative_fd(MSI, -2))
    add("msi_mask", msi_mask(ACTION_MASK))
    add("msi_unmask", msi_mask(ACTION_UNMASK))
    add("msix_count_0", raw(N, MSIX, 0, 0))
    add("msix_eventfd", raw(DATA_EVENTFD | ACTION_TRIGGER, MSIX, data=fds(-1)))
    add("conflicts", conflicts)
    add("msi_enable_bit", msi_enable_bit)
    add("msi_enable_no_fd", msi_enable_no_fd)
    add("intx_across_reset", across_reset(INTX))
    add("msi_across_reset", across_reset(MSI))
    add("req_across_reset", across_reset(REQ))

    def closing(index, dev=dev):
        fn = across_close(index)

        def step():
            dev_of[0] = dev
            return fn()
        return step
    steps.append((kind + "_intx_across_close", closing(INTX)))
    steps.append((kind + "_msi_across_close", closing(MSI)))
    steps.append((kind + "_req_across_close", closing(REQ)))
run_all(steps)
