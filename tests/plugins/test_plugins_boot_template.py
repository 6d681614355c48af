"""The fixture's boot templates: each topology is read and parsed at its first boot in the
session, and later tests boot from what that boot parsed -- keyed by the topology's
content (an edited file is a new template), the ``uapi`` override and the plugin set
(switching plugins off makes a new template, not a kernel with the old drivers)."""

from __future__ import annotations

import textwrap

import pytest

import mockkernel

_MACHINE = textwrap.dedent(
    """
    [kernel]
    uapi = "{uapi}"

    [[root_ports]]
    bdf = "0000:00:01.0"

    [[devices]]
    bdf = "0000:01:00.0"
    root_port = "0000:00:01.0"
    vendor = 0x15b3
    device = 0x101d
    class = 0x020000
    driver = "mlx5_core"
    iommu_group = 3
    """
)


@pytest.fixture(autouse=True, scope="module")
def _imports_done_out_here() -> None:
    """Boot once in this process before ``pytester`` snapshots ``sys.modules``: the
    modules a boot imports (the plugins' included) are then this process's, and not
    unloaded with what the in-process inner session imported -- a module imported again
    later would be a second copy of its classes beside the plugins' references to the
    first."""
    mockkernel.boot().shutdown()


def test_a_file_topology_is_parsed_once_and_an_edited_file_is_a_new_template(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".toml", machine=_MACHINE.format(uapi="linux-7.2"))
    pytester.makepyfile(
        test_inner=f"""
        import pathlib

        import pytest

        SEEN = []
        EDITED = {_MACHINE.format(uapi="tph-v11")!r}

        @pytest.mark.mockkernel(topology="machine.toml")
        def test_1_first_boot(mock_kernel):
            SEEN.append(mock_kernel.topology)
            assert mock_kernel.topology.kernel.uapi == "linux-7.2"

        @pytest.mark.mockkernel(topology="machine.toml")
        def test_2_same_file_same_template(mock_kernel):
            assert mock_kernel.start_pending  # (booted from the template, at first use)
            assert mock_kernel.topology is SEEN[0]
            assert [d.bdf for d in mock_kernel.topology.devices] == ["0000:01:00.0"]

        def test_3_edit_the_file(request):
            (pathlib.Path(request.node.path).parent / "machine.toml").write_text(EDITED)

        @pytest.mark.mockkernel(topology="machine.toml")
        def test_4_the_edited_file(mock_kernel):
            assert mock_kernel.topology is not SEEN[0]
            assert mock_kernel.topology.kernel.uapi == "tph-v11"
            assert mock_kernel.uapi.name == "tph-v11"
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_the_uapi_override_and_the_plugin_set_are_part_of_the_key(
    pytester: pytest.Pytester, clean_plugin_env: None
) -> None:
    pytester.makepyfile(
        test_inner="""
        import pytest

        from mockkernel.plugins import AUTOLOAD_ENV
        from mockkernel.vfs import Vfs

        def test_1_default(mock_kernel):
            assert mock_kernel.subsys(Vfs).peek("/dev/udmabuf") is not None

        @pytest.mark.mockkernel(uapi="linux-7.2")
        def test_2_uapi(mock_kernel):
            assert mock_kernel.uapi.name == "linux-7.2"

        def test_3_default_again(mock_kernel):
            assert mock_kernel.uapi.name != "linux-7.2"

        @pytest.fixture
        def no_plugins(monkeypatch):
            monkeypatch.setenv(AUTOLOAD_ENV, "1")

        def test_4_plugins_off(no_plugins, mock_kernel):
            assert mock_kernel.subsys(Vfs).peek("/dev/udmabuf") is None

        def test_5_plugins_back(mock_kernel):
            assert mock_kernel.subsys(Vfs).peek("/dev/udmabuf") is not None
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
