"""Probe: /dev/udmabuf (UDMABUF_CREATE, UDMABUF_CREATE_LIST) and mmap of the result.

Prints one JSON object per line: {"step": NAME, "ok": RESULT} or
{"step": NAME, "errno": "ENAME"}.  No raw fd numbers: only relations.
Standard library only.  On real Linux /dev/udmabuf is 0600 root:root, so the
golden run is as root; under mockkernel it runs as a normal user.
"""
import fcntl
import mmap
import os
import resource
import struct

from _probe import (
    F_ADD_SEALS, F_GET_SEALS, F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK,
    F_SEAL_WRITE, MFD_ALLOW_SEALING, PAGE, UDMABUF_CREATE, UDMABUF_CREATE_LIST,
    UDMABUF_FLAGS_CLOEXEC, Res, call, cloexec, closed_fd, ioc, lowest_free, run_all,
    udmabuf_create,
)

# --- constants (linux/udmabuf.h, linux/memfd.h, linux/fcntl.h) ----------------

# struct udmabuf_create      {u32 memfd; u32 flags; u64 offset; u64 size;}   24 bytes
# struct udmabuf_create_list {u32 flags; u32 count; struct udmabuf_create_item list[];}  8 bytes
# struct udmabuf_create_item {u32 memfd; u32 __pad; u64 offset; u64 size;}   24 bytes
CREATE_FMT = "=IIQQ"
LIST_HEAD_FMT = "=II"
ITEM_FMT = "=IIQQ"
LIST_LIMIT = 1024          # udmabuf module parameter list_limit (default)
SIZE_LIMIT_MB = 64         # udmabuf module parameter size_limit_mb (default)


# --- helpers -------------------------------------------------------------------
# pattern() and make_memfd() are this probe's own, not _probe's: each page's first byte
# differs, and the seals are a parameter.


def pattern(size, seed=0):
    page = bytes((i * 7 + seed) % 251 for i in range(PAGE))
    out = bytearray()
    for p in range(size // PAGE):
        out += bytes([(p * 37 + seed) % 256]) + page[1:]
    return bytes(out)


def open_dev(r, flags=os.O_RDWR):
    return r.fd(os.open("/dev/udmabuf", flags))


def make_memfd(r, size=2 * PAGE, seals=F_SEAL_SHRINK, sealing=True, seed=0):
    fd = r.fd(os.memfd_create("probe", MFD_ALLOW_SEALING if sealing else 0))
    os.ftruncate(fd, size)
    if size <= 16 * PAGE:
        os.pwrite(fd, pattern(size, seed), 0)
    if seals:
        fcntl.fcntl(fd, F_ADD_SEALS, seals)
    return fd


def create_list(dev, items, flags=0, count=None):
    buf = bytearray(struct.pack(LIST_HEAD_FMT, flags, len(items) if count is None else count))
    for it in items:
        memfd, offset, size = it[:3]
        pad = it[3] if len(it) > 3 else 0
        buf += struct.pack(ITEM_FMT, memfd & 0xFFFFFFFF, pad, offset, size)
    return fcntl.ioctl(dev, UDMABUF_CREATE_LIST, buf)


def describe(fd, low):
    st = os.fstat(fd)
    return {"new_fd_is_lowest_free": fd == low, "cloexec": cloexec(fd), "size": st.st_size}


def dmabuf_contents(fd, size):
    m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
    try:
        return m[:]
    finally:
        m.close()


# --- UDMABUF_CREATE ------------------------------------------------------------


def create_case(size=2 * PAGE, seals=F_SEAL_SHRINK, sealing=True, offset=0, length=2 * PAGE,
                flags=0):
    def step():
        with Res() as r:
            dev = open_dev(r)
            memfd = make_memfd(r, size, seals, sealing)
            low = lowest_free()
            buf = r.fd(udmabuf_create(dev, memfd, offset, length, flags))
            return describe(buf, low)
    return step


def create_with_source(open_source):
    def step():
        with Res() as r:
            dev = open_dev(r)
            src = open_source(r)
            buf = r.fd(udmabuf_create(dev, src, 0, PAGE))
            return describe(buf, -1)["size"]
    return step


def src_pipe(r):
    rd, wr = os.pipe()
    r.fd(wr)
    return r.fd(rd)


def src_dev_null(r):
    return r.fd(os.open("/dev/null", os.O_RDWR))


def src_regular_file(r):
    # this script itself: a regular, non-shmem file
    return r.fd(os.open(os.path.abspath(__file__), os.O_RDONLY))


def src_tmpfs_file(r):
    fd = r.fd(os.open("/dev/shm", os.O_TMPFILE | os.O_RDWR, 0o600))
    os.ftruncate(fd, 2 * PAGE)
    return fd


def src_closed(r):
    return closed_fd()


def src_minus_one(r):
    return -1


def src_udmabuf_dev(r):
    return open_dev(r)


def src_dmabuf(r):
    dev = open_dev(r)
    memfd = make_memfd(r)
    return r.fd(udmabuf_create(dev, memfd, 0, 2 * PAGE))


def src_memfd_reopened_rdonly(r):
    memfd = make_memfd(r)
    return r.fd(os.open("/proc/self/fd/%d" % memfd, os.O_RDONLY))


def tmpfs_file_seals():
    with Res() as r:
        fd = src_tmpfs_file(r)
        return {"get_seals": call(fcntl.fcntl, fd, F_GET_SEALS),
                "add_seal_shrink": call(fcntl.fcntl, fd, F_ADD_SEALS, F_SEAL_SHRINK)}


def memfd_seals_seen():
    with Res() as r:
        a = make_memfd(r, seals=0)
        b = make_memfd(r, seals=0, sealing=False)
        c = make_memfd(r, seals=F_SEAL_SHRINK)
        return {"allow_sealing_no_seals": fcntl.fcntl(a, F_GET_SEALS),
                "no_allow_sealing": fcntl.fcntl(b, F_GET_SEALS),
                "seal_shrink": fcntl.fcntl(c, F_GET_SEALS)}


def create_with_offset_contents():
    with Res() as r:
        dev = open_dev(r)
        memfd = make_memfd(r, 3 * PAGE)
        buf = r.fd(udmabuf_create(dev, memfd, PAGE, PAGE))
        data = dmabuf_contents(buf, PAGE)
        return {"size": os.fstat(buf).st_size,
                "equals_memfd_page_1": data == os.pread(memfd, PAGE, PAGE)}


def create_bad_pointer():
    with Res() as r:
        dev = open_dev(r)
        r.fd(fcntl.ioctl(dev, UDMABUF_CREATE, 16))


def create_null_pointer():
    with Res() as r:
        dev = open_dev(r)
        r.fd(fcntl.ioctl(dev, UDMABUF_CREATE, 0))


def ioctl_variant(cmd, payload=None):
    def step():
        with Res() as r:
            dev = open_dev(r)
            memfd = make_memfd(r)
            arg = bytearray(struct.pack(CREATE_FMT, memfd, 0, 0, 2 * PAGE)) if payload is None \
                else bytearray(payload)
            res = fcntl.ioctl(dev, cmd, arg)
            if res > 0:
                r.fd(res)
            return "returned"
    return step


def create_failure_no_fd_leak():
    with Res() as r:
        dev = open_dev(r)
        good = make_memfd(r)
        bad = make_memfd(r, seals=0)
        out = {}
        for name, args in (("EINVAL_unsealed", (bad, 0, 2 * PAGE)),
                           ("EINVAL_unaligned", (good, 1, PAGE)),
                           ("EBADFD_closed", (closed_fd(), 0, PAGE))):
            before = lowest_free()
            res = call(udmabuf_create, dev, *args)
            if isinstance(res, int):
                r.fd(res)
            out[name] = {"result": res if not isinstance(res, int) else "created",
                         "lowest_free_unchanged": lowest_free() == before}
        return out


def create_dev_opened_rdonly():
    with Res() as r:
        dev = open_dev(r, os.O_RDONLY)
        memfd = make_memfd(r)
        low = lowest_free()
        return describe(r.fd(udmabuf_create(dev, memfd, 0, 2 * PAGE)), low)


def create_emfile():
    with Res() as r:
        dev = open_dev(r)
        memfd = make_memfd(r)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free(), hard))
        try:
            res = call(udmabuf_create, dev, memfd, 0, 2 * PAGE)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        if isinstance(res, int):
            r.fd(res)
            return "created"
        # the memfd must still be usable, and a retry must work
        retry = r.fd(udmabuf_create(dev, memfd, 0, 2 * PAGE))
        return {"create": res, "retry_size": os.fstat(retry).st_size}


def create_same_memfd_twice():
    with Res() as r:
        dev = open_dev(r)
        memfd = make_memfd(r)
        a = r.fd(udmabuf_create(dev, memfd, 0, 2 * PAGE))
        b = r.fd(udmabuf_create(dev, memfd, 0, 2 * PAGE))
        ma = r.map(mmap.mmap(a, 2 * PAGE))
        mb = r.map(mmap.mmap(b, 2 * PAGE))
        ma[10:15] = b"HELLO"
        sta, stb = os.fstat(a), os.fstat(b)
        return {"distinct_inodes": sta.st_ino != stb.st_ino, "same_dev": sta.st_dev == stb.st_dev,
                "write_via_a_seen_via_b": mb[10:15] == b"HELLO"}


# --- UDMABUF_CREATE_LIST ---------------------------------------------------------


def list_case(build, flags=0, count=None):
    """build(r) -> list of (memfd, offset, size[, pad]) items."""
    def step():
        with Res() as r:
            dev = open_dev(r)
            items = build(r)
            low = lowest_free()
            return describe(r.fd(create_list(dev, items, flags, count)), low)
    return step


def items_one(r):
    return [(make_memfd(r), 0, 2 * PAGE)]


def items_none(r):
    return []


def items_limit(n):
    def build(r):
        memfd = make_memfd(r, PAGE)
        return [(memfd, 0, PAGE)] * n
    return build


def items_bad_fd_middle(r):
    a, b = make_memfd(r), make_memfd(r)
    return [(a, 0, PAGE), (closed_fd(), 0, PAGE), (b, 0, PAGE)]


def items_unaligned_middle(r):
    a, b = make_memfd(r), make_memfd(r)
    return [(a, 0, PAGE), (b, 100, PAGE), (a, PAGE, PAGE)]


def items_unsealed_middle(r):
    a, b = make_memfd(r), make_memfd(r, seals=0)
    return [(a, 0, PAGE), (b, 0, PAGE), (a, PAGE, PAGE)]


def items_size_zero_middle(r):
    a = make_memfd(r)
    return [(a, 0, PAGE), (a, 0, 0), (a, PAGE, PAGE)]


def items_beyond_end_middle(r):
    a = make_memfd(r)
    return [(a, 0, PAGE), (a, PAGE, 2 * PAGE)]


def items_pad_nonzero(r):
    return [(make_memfd(r), 0, 2 * PAGE, 0xFFFFFFFF)]


def items_total_over_limit(r):
    half = (SIZE_LIMIT_MB // 2) * 1024 * 1024 + PAGE
    a = make_memfd(r, half)
    b = make_memfd(r, half)
    return [(a, 0, half), (b, 0, half)]


def list_count_over_limit():
    with Res() as r:
        dev = open_dev(r)
        memfd = make_memfd(r, PAGE)
        r.fd(create_list(dev, [(memfd, 0, PAGE)] * (LIST_LIMIT + 1)))


def list_two_items_order():
    with Res() as r:
        dev = open_dev(r)
        a = make_memfd(r, 2 * PAGE, seed=1)
        b = make_memfd(r, 2 * PAGE, seed=2)
        buf = r.fd(create_list(dev, [(a, PAGE, PAGE), (b, 0, 2 * PAGE), (a, 0, PAGE)]))
        data = dmabuf_contents(buf, 4 * PAGE)
        expect = os.pread(a, PAGE, PAGE) + os.pread(b, 2 * PAGE, 0) + os.pread(a, PAGE, 0)
        return {"size": os.fstat(buf).st_size, "contents_in_item_order": data == expect}


def list_same_page_twice_aliases():
    with Res() as r:
        dev = open_dev(r)
        a = make_memfd(r, PAGE)
        buf = r.fd(create_list(dev, [(a, 0, PAGE), (a, 0, PAGE)]))
        m = r.map(mmap.mmap(buf, 2 * PAGE))
        m[0:4] = b"ABCD"
        return {"size": os.fstat(buf).st_size, "second_copy_sees_write": m[PAGE:PAGE + 4] == b"ABCD",
                "memfd_sees_write": os.pread(a, 4, 0) == b"ABCD"}


def list_bad_pointer():
    with Res() as r:
        dev = open_dev(r)
        r.fd(fcntl.ioctl(dev, UDMABUF_CREATE_LIST, 16))


# --- mmap of the dma-buf -----------------------------------------------------------


def with_buf(fn, size=2 * PAGE):
    def step():
        with Res() as r:
            dev = open_dev(r)
            memfd = make_memfd(r, size)
            buf = r.fd(udmabuf_create(dev, memfd, 0, size))
            return fn(r, memfd, buf)
    return step


def mmap_contents(r, memfd, buf):
    m = r.map(mmap.mmap(buf, 2 * PAGE))
    return m[:] == os.pread(memfd, 2 * PAGE, 0)


def mmap_write_dmabuf_seen_by_memfd(r, memfd, buf):
    m = r.map(mmap.mmap(buf, 2 * PAGE))
    mm = r.map(mmap.mmap(memfd, 2 * PAGE))
    m[PAGE + 5:PAGE + 10] = b"WORLD"
    return {"pread": os.pread(memfd, 5, PAGE + 5) == b"WORLD",
            "memfd_mmap": mm[PAGE + 5:PAGE + 10] == b"WORLD"}


def mmap_write_memfd_seen_by_dmabuf(r, memfd, buf):
    m = r.map(mmap.mmap(buf, 2 * PAGE))
    os.pwrite(memfd, b"PWRITE", 100)
    via_pwrite = m[100:106] == b"PWRITE"
    mm = r.map(mmap.mmap(memfd, 2 * PAGE))
    mm[200:205] = b"MMAPW"
    return {"pwrite": via_pwrite, "memfd_mmap": m[200:205] == b"MMAPW"}


def mmap_args(length, offset=0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE):
    def fn(r, memfd, buf):
        m = r.map(mmap.mmap(buf, length, flags, prot, offset=offset))
        out = {"len": len(m)}
        if prot & mmap.PROT_READ and length:
            out["equals_memfd_range"] = m[:] == os.pread(memfd, length, offset)
        return out
    return fn


def mmap_private_then_write(r, memfd, buf):
    m = r.map(mmap.mmap(buf, 2 * PAGE, mmap.MAP_PRIVATE))
    m[0:4] = b"PRIV"
    return {"memfd_sees_private_write": os.pread(memfd, 4, 0) == b"PRIV"}


def mmap_write_on_readonly_mapping(r, memfd, buf):
    m = r.map(mmap.mmap(buf, 2 * PAGE, mmap.MAP_SHARED, mmap.PROT_READ))
    try:
        m[0:1] = b"x"
    except TypeError as e:
        return "TypeError"
    return "written"


def main():
    steps = [
        ("memfd_seals_seen", memfd_seals_seen),
        ("tmpfs_file_seals", tmpfs_file_seals),
        ("create_sealed_ok", create_case()),
        ("create_memfd_no_seals", create_case(seals=0)),
        ("create_memfd_not_sealable", create_case(seals=0, sealing=False)),
        ("create_seal_shrink_write", create_case(seals=F_SEAL_SHRINK | F_SEAL_WRITE)),
        ("create_seal_shrink_future_write", create_case(seals=F_SEAL_SHRINK | F_SEAL_FUTURE_WRITE)),
        ("create_seal_shrink_grow_seal", create_case(seals=F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)),
        ("create_seal_grow_only", create_case(seals=F_SEAL_GROW)),
        ("create_seal_write_only", create_case(seals=F_SEAL_WRITE)),
        ("create_source_pipe", create_with_source(src_pipe)),
        ("create_source_dev_null", create_with_source(src_dev_null)),
        ("create_source_regular_file", create_with_source(src_regular_file)),
        ("create_source_tmpfs_file", create_with_source(src_tmpfs_file)),
        ("create_source_closed_fd", create_with_source(src_closed)),
        ("create_source_fd_minus_1", create_with_source(src_minus_one)),
        ("create_source_udmabuf_dev", create_with_source(src_udmabuf_dev)),
        ("create_source_dmabuf", create_with_source(src_dmabuf)),
        ("create_source_memfd_reopened_rdonly", create_with_source(src_memfd_reopened_rdonly)),
        ("create_offset_unaligned", create_case(offset=100, length=PAGE)),
        ("create_size_unaligned", create_case(length=100)),
        ("create_size_unaligned_big", create_case(length=PAGE + 100)),
        ("create_size_zero", create_case(length=0)),
        ("create_offset_plus_size_beyond_end", create_case(offset=PAGE, length=2 * PAGE)),
        ("create_offset_at_end", create_case(offset=2 * PAGE, length=PAGE)),
        ("create_offset_far_beyond_end", create_case(offset=1 << 40, length=PAGE)),
        ("create_size_beyond_end", create_case(length=3 * PAGE)),
        ("create_size_at_limit_plus_page", create_case(size=SIZE_LIMIT_MB * 1024 * 1024 + PAGE,
                                                        length=SIZE_LIMIT_MB * 1024 * 1024 + PAGE)),
        ("create_size_huge", create_case(length=1 << 62)),
        ("create_offset_plus_size_overflows", create_case(offset=(1 << 64) - PAGE, length=2 * PAGE)),
        ("create_flags_cloexec", create_case(flags=UDMABUF_FLAGS_CLOEXEC)),
        ("create_flags_unknown_bit1", create_case(flags=0x2)),
        ("create_flags_unknown_bit31", create_case(flags=0x80000000)),
        ("create_flags_cloexec_plus_unknown", create_case(flags=0x3)),
        ("create_with_offset_contents", create_with_offset_contents),
        ("create_bad_pointer", create_bad_pointer),
        ("create_null_pointer", create_null_pointer),
        ("create_cmd_wrong_size", ioctl_variant(ioc(1, "u", 0x42, 16),
                                                struct.pack("=IIQ", 0, 0, 0))),
        ("create_cmd_wrong_dir", ioctl_variant(ioc(2, "u", 0x42, 24))),
        ("create_cmd_rw_dir", ioctl_variant(ioc(3, "u", 0x42, 24))),
        ("udmabuf_unknown_ioctl_nr", ioctl_variant(ioc(1, "u", 0x44, 24))),
        ("udmabuf_unknown_ioctl_type", ioctl_variant(ioc(1, "v", 0x42, 24))),
        ("create_failure_no_fd_leak", create_failure_no_fd_leak),
        ("create_dev_opened_rdonly", create_dev_opened_rdonly),
        ("create_emfile", create_emfile),
        ("create_same_memfd_twice", create_same_memfd_twice),
        ("list_one_item", list_case(items_one)),
        ("list_count_0", list_case(items_none)),
        ("list_count_at_limit", list_case(items_limit(LIST_LIMIT))),
        ("list_count_over_limit", list_count_over_limit),
        ("list_bad_fd_middle", list_case(items_bad_fd_middle)),
        ("list_unaligned_middle", list_case(items_unaligned_middle)),
        ("list_unsealed_middle", list_case(items_unsealed_middle)),
        ("list_size_zero_middle", list_case(items_size_zero_middle)),
        ("list_beyond_end_last", list_case(items_beyond_end_middle)),
        ("list_pad_nonzero", list_case(items_pad_nonzero)),
        ("list_total_over_size_limit", list_case(items_total_over_limit)),
        ("list_flags_cloexec", list_case(items_one, flags=UDMABUF_FLAGS_CLOEXEC)),
        ("list_flags_unknown", list_case(items_one, flags=0x2)),
        ("list_bad_pointer", list_bad_pointer),
        ("list_two_items_order", list_two_items_order),
        ("list_same_page_twice_aliases", list_same_page_twice_aliases),
        ("mmap_contents_equal_memfd", with_buf(mmap_contents)),
        ("mmap_write_dmabuf_seen_by_memfd", with_buf(mmap_write_dmabuf_seen_by_memfd)),
        ("mmap_write_memfd_seen_by_dmabuf", with_buf(mmap_write_memfd_seen_by_dmabuf)),
        ("mmap_full", with_buf(mmap_args(2 * PAGE))),
        ("mmap_first_page", with_buf(mmap_args(PAGE))),
        ("mmap_beyond_size", with_buf(mmap_args(3 * PAGE))),
        ("mmap_offset_page_1", with_buf(mmap_args(PAGE, offset=PAGE))),
        ("mmap_offset_page_1_len_2_pages", with_buf(mmap_args(2 * PAGE, offset=PAGE))),
        ("mmap_offset_at_end", with_buf(mmap_args(PAGE, offset=2 * PAGE))),
        ("mmap_offset_unaligned", with_buf(mmap_args(PAGE, offset=100))),
        ("mmap_length_0", with_buf(mmap_args(0))),
        ("mmap_length_unaligned", with_buf(mmap_args(100))),
        ("mmap_private", with_buf(mmap_args(2 * PAGE, flags=mmap.MAP_PRIVATE))),
        ("mmap_private_then_write", with_buf(mmap_private_then_write)),
        ("mmap_prot_read", with_buf(mmap_args(2 * PAGE, prot=mmap.PROT_READ))),
        ("mmap_prot_write_only", with_buf(mmap_args(2 * PAGE, prot=mmap.PROT_WRITE))),
        ("mmap_prot_exec", with_buf(mmap_args(2 * PAGE, prot=mmap.PROT_READ | mmap.PROT_EXEC))),
        ("mmap_prot_rwx", with_buf(mmap_args(2 * PAGE, prot=mmap.PROT_READ | mmap.PROT_WRITE
                                             | mmap.PROT_EXEC))),
        ("mmap_write_on_readonly_mapping", with_buf(mmap_write_on_readonly_mapping)),
    ]
    run_all(steps)


if __name__ == "__main__":
    main()
