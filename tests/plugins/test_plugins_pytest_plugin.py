"""The pytest plugin (``pytest11`` entry point), run as a user runs it: through ``pytester``.

Each test writes a test file, runs pytest on it in this process (the installed
``mockkernel`` pytest plugin is picked up from its entry point, as in a user's
project) and checks the outcome.  Inner file names are unique: in-process runs
share ``sys.modules``.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("clean_plugin_env")

# no cache files in the example project; pytest-benchmark (when installed) only warns there
QUIET = ("-p", "no:cacheprovider", "-p", "no:benchmark")


def test_mock_kernel_fixture_runs_an_unchanged_program(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner_fixture="""
        import fcntl, os, struct
        from fcntl import ioctl  # bound at import: the fixture rebinds the test module too

        import mockkernel
        from mockkernel.driver import dma_buf_subsys
        from mockkernel.testing import sealed_memfd
        from mockkernel.uapi.linux.udmabuf import UDMABUF_CREATE

        def test_udmabuf(mock_kernel):
            assert isinstance(mock_kernel, mockkernel.Kernel)
            memfd = sealed_memfd(4096)
            dev = os.open("/dev/udmabuf", os.O_RDWR)
            arg = bytearray(struct.pack("=IIQQ", memfd, 0, 0, 4096))
            fd = ioctl(dev, UDMABUF_CREATE, arg)
            assert fd in mock_kernel.init_process.files
            assert os.fstat(fd).st_size == 4096
            for n in (fd, dev, memfd):
                os.close(n)

        def test_a_fresh_kernel_per_test(mock_kernel):
            assert not mock_kernel.init_process.files
            assert not dma_buf_subsys(mock_kernel).dmabufs
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=2)


def test_redirection_is_gone_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner_uninstall="""
        import fcntl, os

        from mockkernel.realfd import REAL

        def test_installed(mock_kernel):
            assert fcntl.ioctl is not REAL.ioctl
            assert os.path.exists("/dev/udmabuf")

        def test_not_installed_without_the_fixture():  # runs after the first one
            assert fcntl.ioctl is REAL.ioctl
            assert os.open is REAL.open
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=2)


def test_marker_uapi_and_topology(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner_marker="""
        import pytest

        SMALL = '''
        [kernel]
        uapi = "tph-v2"
        nr_cpus = 2
        rlimit_nofile = 256
        '''

        @pytest.mark.mockkernel(uapi="linux-7.2")
        def test_uapi(mock_kernel):
            assert mock_kernel.uapi == "linux-7.2"

        @pytest.mark.mockkernel(topology=SMALL)
        def test_topology(mock_kernel):
            assert mock_kernel.uapi == "tph-v2"
            assert mock_kernel.topology.kernel.nr_cpus == 2
            assert mock_kernel.topology.devices == ()

        @pytest.mark.mockkernel(topology=SMALL, uapi="tph-v1")
        def test_uapi_overrides_the_topology(mock_kernel):
            assert mock_kernel.uapi == "tph-v1"
            assert mock_kernel.topology.kernel.nr_cpus == 2

        def test_default(mock_kernel):
            assert mock_kernel.uapi == "tph-v11"
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=4)


def test_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner_strict="""
        import pytest

        @pytest.mark.mockkernel(uapi="linux-7.2")
        def test_strict(mock_kernel):
            pass
        """
    )
    result = pytester.runpytest(*QUIET, "--strict-markers")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest(*QUIET, "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.mockkernel(topology=None, uapi=None, *modules=*"])


def test_unknown_marker_argument_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner_badmarker="""
        import pytest

        @pytest.mark.mockkernel(topolgy="x.toml")
        def test_typo(mock_kernel):
            pass
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown mockkernel marker arguments*topolgy*"])


def test_a_leak_makes_that_test_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner_leak="""
        import os

        def test_leaks_an_fd(mock_kernel):
            os.open("/dev/udmabuf", os.O_RDWR)  # never closed

        def test_clean(mock_kernel):
            os.close(os.open("/dev/udmabuf", os.O_RDWR))
        """
    )
    result = pytester.runpytest(*QUIET, "-rE")
    # the leaking test's call passed; its teardown errors; the next test is unaffected
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_an_fd*",
            "*still alive at shutdown*",
            "*fd * still open*udmabuf*",
        ]
    )
    assert "ERROR at teardown of test_clean" not in result.stdout.str()


def test_factory_boots_several_kernels(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_inner_factory="""
        def test_two(mock_kernel_factory):
            a = mock_kernel_factory(uapi="tph-v1")
            b = mock_kernel_factory(uapi="linux-7.2")
            assert a is not b
            assert (a.uapi, b.uapi) == ("tph-v1", "linux-7.2")

        def test_factory_leak(mock_kernel_factory):
            k = mock_kernel_factory(install=True)
            import os
            os.open("/dev/udmabuf", os.O_RDWR)
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_factory_leak*"])
