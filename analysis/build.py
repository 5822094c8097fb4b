"""Build the contract registry a chain runs, from its genesis contract configuration."""

from __future__ import annotations

from typing import Any

from analysis.contracts import NoteContract, Registry
from analysis.devices import DeviceRegistry, DeviceRules

KNOWN_SECTIONS = ("devices",)


def build_registry(suite_name: str, config: dict[str, Any], members: tuple[bytes, ...]) -> Registry:
    """ValueError (naming the section) for an unknown section or a bad setting."""
    for section in config:
        if section not in KNOWN_SECTIONS:
            raise ValueError(f"unknown contract section {section!r}; known: {KNOWN_SECTIONS}")
    raw = config.get("devices", {})
    if not isinstance(raw, dict):
        raise ValueError("devices: expected an object")
    try:
        rules = DeviceRules.from_config(suite_name, raw, members)
    except ValueError as exc:
        raise ValueError(f"devices: {exc}") from None
    return Registry([NoteContract(), DeviceRegistry(rules)])
