"""The ``ubproto`` command line: one entry point for the main jobs.

Each sub-command lives in the module that owns the job and exposes two functions,
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported lazily so that
``ubproto --help`` stays fast and a broken optional part cannot stop the others.
"""

import argparse
import importlib
import sys

from .errors import UbprotoError

# name -> (module, one-line help)
COMMANDS = {
    "doctor":  ("ubproto.sim.doctor",          "check every tool ubproto needs and print versions and paths"),
    "dissect": ("ubproto.hdl.proto.dissect",   "print the layers of UB-style frames from a pcap file or hex"),
    "synth":   ("ubproto.platforms.synth",     "synthesize a component out of context and report LUT/FF/BRAM and Fmax"),
    "prove":   ("ubproto.verify.formal",       "run the formal properties of a component with SymbiYosys"),
    "sim":     ("ubproto.sim.experiment",      "run an experiment described by a YAML file"),
    "hil":     ("ubproto.platforms.hil",       "talk to a board (model, simulated or real): registers, counters, traffic test"),
    "build":   ("ubproto.platforms.build",     "build a board design into a bitstream with a resource and timing report"),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ubproto",
        description="Prototype UnifiedBus-style interconnects: simulate, prove, build, run on hardware.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            # An unimplemented or broken command must not break the whole CLI.
            p.set_defaults(_unavailable=str(exc))
            continue
        module.add_arguments(p)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__
        print(f"ubproto {__version__}")
        return 0
    if not args.command:
        parser.print_help()
        return 2
    if getattr(args, "_unavailable", None):
        print(f"ubproto {args.command}: not available: {args._unavailable}", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except UbprotoError as exc:
        print(f"ubproto {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ubproto {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
