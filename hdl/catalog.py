"""Registry of synthesizable components, by name, for the tools (synth, prove, build).

A tool that takes a component on the command line (``ubproto synth crc30``) looks it up
here. Each entry maps a short name to a ``"module.path:factory"`` string, a one-line
description and optional default parameters. Nothing is imported until an entry is used, so
a component that is missing or broken only affects the tools that ask for it.

Parameters come either as Python values (from code) or as strings (from ``--param k=v`` on
the command line). Strings are converted using the factory's signature: the parameter's
annotation if it has one (``int``, ``bool``, ``float``, ``str``, an :class:`enum.Enum`,
``typing.Literal[...]``, ``X | None``), else the type of its default value, else a best
guess (integer, then ``true``/``false``, else the string itself).

Example::

    from ubproto.hdl.catalog import get_component
    dut = get_component("demo-counter", width="48")   # -> DemoCounter(width=48)
"""

import dataclasses
import enum
import importlib
import inspect
import types
import typing
from dataclasses import dataclass, field

from ..errors import UbprotoError

__all__ = [
    "CatalogEntry", "register", "names", "entries", "get_entry", "load_factory",
    "component_params", "get_component", "parse_params",
]


@dataclass(frozen=True)
class CatalogEntry:
    """One registered component.

    ``target`` is ``"package.module:factory"``; the factory is a class or function that
    returns an Amaranth :class:`~amaranth.lib.wiring.Component`. ``defaults`` are keyword
    arguments used when the caller does not give them (for factories with required
    parameters, so that ``ubproto synth NAME`` works without any ``--param``).
    """
    name: str
    target: str
    description: str
    defaults: dict = field(default_factory=dict)


_REGISTRY: dict[str, CatalogEntry] = {}


def register(name, target, description, *, defaults=None, replace=False):
    """Add a component to the catalog. Returns the new :class:`CatalogEntry`."""
    if not isinstance(name, str) or not name or name != name.strip() or " " in name:
        raise ValueError(f"catalog name must be a non-empty word, not {name!r}")
    module, sep, attr = target.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"catalog target must look like 'package.module:factory', not {target!r}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"component {name!r} is already registered as {_REGISTRY[name].target}")
    entry = CatalogEntry(name, target, description, dict(defaults or {}))
    _REGISTRY[name] = entry
    return entry


# --- The built-in catalog --------------------------------------------------------------

register("demo-counter", "ubproto.hdl.common.demo:DemoCounter",
         "accumulating counter (width-bit adder + register): a tiny known design for tool tests")
register("crc30", "ubproto.hdl.proto.crc30:FlitCrc30",
         "running CRC30 (UB BCRC) over a flit stream, one 160-bit flit per clock")
register("crc30-inserter", "ubproto.hdl.proto.crc30:BlockCrcInserter",
         "TX: fills in the BCRC of every block of framed packets")
register("crc30-checker", "ubproto.hdl.proto.crc30:BlockCrcChecker",
         "RX: checks the BCRC of every block, flags the verdict on its last flit")
register("credit-counter", "ubproto.hdl.common.credit:CreditCounter",
         "credits of one VL, in cells (consume on send, restore on return)",
         defaults={"initial": 64})  # a 512-flit buffer in 8-flit cells
register("link-endpoint", "ubproto.hdl.link.endpoint:LinkEndpoint",
         "UB-style link endpoint: TX + RX + Go-Back-N retry + bring-up (2 VLs, default config)")
register("fault-injector", "ubproto.hdl.fault.injector:FaultInjector",
         "synthesizable lossy channel: delay, bit errors, bursts, drops, link down/up")
register("packet-fifo", "ubproto.hdl.common.fifo:PacketFifo",
         "packet-aware flit FIFO in block RAM (store-and-forward by default)",
         defaults={"depth": 512, "max_packet_words": 512})
register("switch", "ubproto.hdl.switch.switch:Switch",
         "N-port UB switch: ingress routing, VOQ buffers, iSLIP/FIFO allocator, VL egress")
register("cc-egress", "ubproto.hdl.cc.egress:EgressCongestion",
         "FECN markers per VL + phantom queue of one output port", defaults={"num_vls": 1})
register("cc-marker", "ubproto.hdl.cc.marker:FecnMarker", "RED/FECN marker of one egress (port, VL)",
         defaults={"occupancy_bits": 20, "phantom_bits": 26})
register("cc-phantom", "ubproto.hdl.cc.phantom:PhantomQueue",
         "phantom queue: byte counter drained at gamma x line rate")
register("cc-rate-source", "ubproto.hdl.cc.rate:RateControlledSource",
         "DCQCN reaction point + rate limiter + CNP parser")


# --- Lookup ----------------------------------------------------------------------------

def names():
    """Registered component names, sorted."""
    return sorted(_REGISTRY)


def entries():
    """Registered :class:`CatalogEntry` objects, sorted by name."""
    return [_REGISTRY[n] for n in names()]


def get_entry(name):
    """The :class:`CatalogEntry` for ``name``; :class:`UbprotoError` listing the known names
    if there is none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UbprotoError(f"unknown component {name!r}; known components: "
                           f"{', '.join(names())}") from None


def load_factory(name):
    """Import and return the factory of component ``name``."""
    entry = get_entry(name)
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UbprotoError(f"component {name!r} ({entry.target}) is not available: "
                           f"cannot import {module_name}: {exc}") from exc
    try:
        factory = getattr(module, attr)
    except AttributeError:
        raise UbprotoError(f"component {name!r} ({entry.target}) is not available: "
                           f"{module_name} has no {attr!r}") from None
    return factory


def _signature(factory):
    try:
        return inspect.signature(factory, eval_str=True)
    except (NameError, TypeError, SyntaxError):  # unresolvable string annotations
        return inspect.signature(factory)


def component_params(name):
    """The parameters of component ``name`` as ``[(param, annotation_text, default), ...]``,
    with the catalog's defaults applied; ``default`` is :data:`inspect.Parameter.empty` for a
    required parameter."""
    entry = get_entry(name)
    sig = _signature(load_factory(name))
    params = [(p.name, p.annotation, p.default) for p in _user_params(sig)]
    params += [(key, *spec) for key, spec in _forwarded_config_fields(sig).items()]
    result = []
    for key, annotation, default in params:
        default = entry.defaults.get(key, default)
        if annotation is not inspect.Parameter.empty:
            ann = getattr(annotation, "__name__", None) or str(annotation)
        elif default not in (inspect.Parameter.empty, None):
            ann = type(default).__name__
        else:
            ann = ""
        result.append((key, ann, default))
    return result


def _user_params(sig):
    return [p for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY)]


def get_component(name, **params):
    """Build component ``name`` with keyword ``params`` (values or strings from the CLI).

    Raises :class:`UbprotoError` for an unknown component, an unavailable one, an unknown or
    missing parameter, or a value that does not convert or that the component rejects.
    """
    entry = get_entry(name)
    factory = load_factory(name)
    sig = _signature(factory)
    accepted = {p.name: p for p in _user_params(sig)}
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())

    # A factory like ``Switch(cfg: SwitchConfig = None, **params)`` passes its keyword
    # parameters on to the config dataclass: those fields are its parameters too, and their
    # annotations say how to convert a CLI string.
    config_fields = _forwarded_config_fields(sig)
    for key in params:
        if key in accepted:
            continue
        if not takes_kwargs or (config_fields and key not in config_fields):
            known = ", ".join([k for k in accepted if k not in config_fields]
                              + list(config_fields)) or "no parameters"
            raise UbprotoError(f"unknown parameter {key!r} for component {name!r}; "
                               f"it takes: {known}")

    kwargs = {}
    for key, value in {**entry.defaults, **params}.items():
        p = accepted.get(key)
        spec = (p.annotation, p.default) if p is not None else config_fields.get(key)
        if spec is not None and isinstance(value, str):
            value = _convert(name, key, value, *spec)
        kwargs[key] = value

    missing = [p.name for p in accepted.values()
               if p.default is p.empty and p.name not in kwargs]
    if missing:
        raise UbprotoError(f"component {name!r} needs parameter(s) {', '.join(missing)} "
                           f"(give them as --param NAME=VALUE)")

    try:
        return factory(**kwargs)
    except UbprotoError:
        raise
    except ValueError as exc:
        raise UbprotoError(f"component {name!r}: bad parameters {kwargs}: {exc}") from exc


def _forwarded_config_fields(sig):
    """``{field: (annotation, default)}`` of every dataclass-annotated parameter of ``sig``,
    if the factory takes ``**kwargs`` (which it forwards to that dataclass); else ``{}``."""
    fields = {}
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return fields
    for p in sig.parameters.values():
        cls = p.annotation
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            continue
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError):
            hints = {}
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            default = (f.default if f.default is not dataclasses.MISSING
                       else inspect.Parameter.empty)
            fields[f.name] = (hints.get(f.name, inspect.Parameter.empty), default)
    return fields


# --- String -> value conversion --------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(component, key, text, annotation, default):
    empty = inspect.Parameter.empty
    if annotation is empty:
        annotation = type(default) if default not in (empty, None) else None
    try:
        return _convert_to(text, annotation)
    except ValueError as exc:
        raise UbprotoError(f"parameter {key}={text!r} of component {component!r}: {exc}") from None


def _convert_to(text, annotation):
    if annotation is None or annotation is typing.Any:
        return _guess(text)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        for choice in choices:
            if str(choice) == text:
                return choice
        raise ValueError(f"must be one of {', '.join(map(str, choices))}")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if type(None) in args and text.lower() == "none":
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert_to(text, arg)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors) or "cannot convert")
    if annotation is bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError("must be true or false")
    if annotation is int:
        try:
            return int(text, 0)
        except ValueError:
            raise ValueError("must be an integer") from None
    if annotation is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if annotation is str:
        return text
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        for member in annotation:
            if text in (member.name, str(member.value)):
                return member
        raise ValueError(f"must be one of {', '.join(m.name for m in annotation)}")
    # An annotation we cannot convert to (a shape, a layout, ...): pass the text through and
    # let the component decide.
    return text


def _guess(text):
    try:
        return int(text, 0)
    except ValueError:
        pass
    word = text.strip().lower()
    if word in ("true", "false"):
        return word == "true"
    if word == "none":
        return None
    return text


def parse_params(items):
    """Turn CLI ``["k=v", ...]`` into ``{"k": "v", ...}`` (values stay strings)."""
    params = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UbprotoError(f"--param expects NAME=VALUE, got {item!r}")
        if key in params:
            raise UbprotoError(f"--param {key} given twice")
        params[key] = value
    return params
