"""The ``mockkernel`` command: run a program, list plugins, show the default topology."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]

UAPI_PROFILES = ("linux-7.2", "tph-v1", "tph-v2", "tph-v11")


def _cmd_run(ns: argparse.Namespace) -> int:
    from .userspace.runner import run_program

    trace = open(ns.trace, "w", encoding="utf-8") if ns.trace else None  # noqa: SIM115
    try:
        return run_program(
            ns.program,
            ns.args,
            topology=ns.topology,
            trace=trace,
            uapi=ns.uapi,
            check_leaks=ns.check_leaks,
        )
    finally:
        if trace is not None:
            trace.close()


def _cmd_plugins(ns: argparse.Namespace) -> int:
    from .plugins import get_plugin_manager, plugin_names

    pm = get_plugin_manager()
    names = plugin_names(pm)
    if not names:
        print("no plugins loaded")
    for name, where in names:
        print(f"{name}\t{where}")
    return 0


def _cmd_topology(ns: argparse.Namespace) -> int:
    from .topology import default_topology, dumps, load_topology

    topo = load_topology(ns.file) if ns.file else default_topology()
    sys.stdout.write(dumps(topo))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mockkernel", description="A simulated Linux kernel that runs in-process."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a Python program unchanged against a mock kernel")
    run.add_argument("--topology", metavar="FILE", help="a topology TOML file (default: built in)")
    run.add_argument("--trace", metavar="FILE", help="write trace events as JSON lines")
    run.add_argument("--uapi", choices=UAPI_PROFILES, help="the uAPI profile to boot with")
    run.add_argument("--check-leaks", action="store_true", help="exit 70 if kernel objects leaked")
    run.add_argument("program", help="the program, e.g. examples/udmabuf_demo.py")
    run.add_argument("args", nargs=argparse.REMAINDER, help="the program's arguments")
    run.set_defaults(func=_cmd_run)
    plugins = sub.add_parser("plugins", help="list the plugins that would be loaded")
    plugins.set_defaults(func=_cmd_plugins)
    topo = sub.add_parser("topology", help="print the default (or a given) topology as TOML")
    topo.add_argument("--file", help="validate and print this topology instead")
    topo.set_defaults(func=_cmd_topology)
    ns = parser.parse_args(argv)
    status: int = ns.func(ns)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
