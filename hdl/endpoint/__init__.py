"""Synthesizable traffic endpoints: generators and measuring sinks (docs/switch.md)."""
