"""Synthesizable channel fault injection (delay, bit errors, bursts, drops, link down/up)."""

from .injector import FaultInjector, PhySignature, probability_threshold

__all__ = ["FaultInjector", "PhySignature", "probability_threshold"]
