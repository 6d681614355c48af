"""``[[rdma.rxe]]`` in the topology: validation, the ``dumps`` round trip, what boots."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mockkernel
from mockkernel.rdma import ib_core
from mockkernel.topology import (
    RdmaSpec,
    RxeSpec,
    Topology,
    TopologyError,
    default_topology,
    dumps,
    load_topology,
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rdma.rxe]]\nnetdev = "a b"\n', "rdma.rxe[0].netdev: 'a b' is not a network interface"),
        ('[[rdma.rxe]]\nnetdev = "x/y"\n', "rdma.rxe[0].netdev: 'x/y' is not"),
        ('[[rdma.rxe]]\nnetdev = "0123456789abcdef"\n', "rdma.rxe[0].netdev:"),
        ('[[rdma.rxe]]\nnetdev = ".."\n', "rdma.rxe[0].netdev:"),
        ("[[rdma.rxe]]\nnetdev = 3\n", "rdma.rxe[0].netdev: expected a string, got integer"),
        ('[[rdma.rxe]]\nname = "r"\n', "rdma.rxe[0].netdev: missing required key"),
        ('[[rdma.rxe]]\nnetdev = "e"\nmtu = 1\n', "rdma.rxe[0].mtu: unknown key"),
        ('[[rdma.rxe]]\nnetdev = "e"\nname = "a:b"\n', "rdma.rxe[0].name: 'a:b' is not"),
        ("[rdma]\nsiw = []\n", "rdma.siw: unknown key"),
        (
            '[[rdma.rxe]]\nnetdev = "e"\n[[rdma.rxe]]\nnetdev = "e"\n',
            "rdma.rxe[1].netdev: 'e' already has an rxe device (rxe[0])",
        ),
        (
            '[[rdma.rxe]]\nnetdev = "e"\nname = "rxe1"\n[[rdma.rxe]]\nnetdev = "f"\n',
            "rdma.rxe[1].name: duplicate 'rxe1' (also rxe[0])",
        ),
    ],
)
def test_rxe_validation(text: str, message: str) -> None:
    with pytest.raises(TopologyError) as e:
        load_topology(text)
    assert str(e.value).startswith(message)


def test_python_built_is_validated_too() -> None:
    with pytest.raises(TopologyError, match=r"^netdev:"):
        RxeSpec("")
    with pytest.raises(TopologyError, match=r"^rxe\[1\]\.netdev:"):
        RdmaSpec((RxeSpec("e"), RxeSpec("e")))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9]{0,14}", fullmatch=True),
            st.none() | st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True),
        ),
        max_size=4,
        unique_by=lambda t: t[0],
    )
)
def test_dumps_round_trips_rxe(specs: list[tuple[str, str | None]]) -> None:
    try:
        rdma = RdmaSpec(tuple(RxeSpec(n, name) for n, name in specs))
    except TopologyError:
        return  # duplicate names
    t = Topology(rdma=rdma)
    assert load_topology(dumps(t)) == t


def test_default_topology_has_no_rxe_and_dumps_unchanged() -> None:
    t = default_topology()
    assert t.rdma == RdmaSpec() and "rdma" not in dumps(t)


def test_rxe_devices_boot_and_go(tmp_path: object) -> None:
    topo = load_topology(
        '[kernel]\nnr_cpus = 2\n[[rdma.rxe]]\nnetdev = "eth0"\n'
        '[[rdma.rxe]]\nnetdev = "eth1"\nname = "roce1"\n'
    )
    k = mockkernel.boot(topo)
    try:
        assert sorted(ib_core(k).devices) == ["roce1", "rxe0"]
        assert [d.index for d in ib_core(k).devices.values()] == [0, 1]
        with k.install():
            assert sorted(os.listdir("/dev/infiniband")) == ["uverbs0", "uverbs1"]
            with open("/sys/class/infiniband_verbs/uverbs1/ibdev") as f:
                assert f.read() == "roce1\n"
    finally:
        assert k.shutdown() == []
    assert ib_core(k).devices == {}
