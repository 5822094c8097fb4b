"""Build the contract registry a chain runs, from its genesis contract configuration."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from analysis.areas import AreaContract
from analysis.contracts import NoteContract, Registry
from analysis.devices import DeviceRegistry, DeviceRules
from analysis.registry import RegistryContract, RegistryRules
from analysis.service import ServiceContract, ServiceRules
from analysis.surveillance import DispenserSurveillance, SurveillanceRules
from analysis.verification import VerificationContract, VerificationRules

KNOWN_SECTIONS = ("devices", "surveillance", "verification", "service", "registry")


def build_registry(
    suite_name: str,
    config: dict[str, Any],
    members: tuple[bytes, ...],
    window: tuple[int, int] = (16, 64),
) -> Registry:
    """ValueError (naming the section) for an unknown section or a bad setting."""
    for section in config:
        if section not in KNOWN_SECTIONS:
            raise ValueError(f"unknown contract section {section!r}; known: {KNOWN_SECTIONS}")
    devices, surveillance = _section(config, "devices"), _section(config, "surveillance")
    try:
        rules = DeviceRules.from_config(suite_name, devices, members)
        device_rules = replace(rules, checkpoint_interval=window[0], watermark_window=window[1])
    except ValueError as exc:
        raise ValueError(f"devices: {exc}") from None
    try:
        surveillance_rules = SurveillanceRules.from_config(surveillance)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"surveillance: {exc}") from None
    try:
        verification = replace(
            VerificationRules.from_config(_section(config, "verification"), members),
            checkpoint_interval=window[0], watermark_window=window[1],
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise ValueError(f"verification: {exc}") from None
    try:
        service = ServiceRules.from_config(_section(config, "service"), verification.utilities)
    except ValueError as exc:
        raise ValueError(f"service: {exc}") from None
    try:
        registry = RegistryRules.from_config(_section(config, "registry"))
    except ValueError as exc:
        raise ValueError(f"registry: {exc}") from None
    return Registry([NoteContract(), DeviceRegistry(device_rules),
                     DispenserSurveillance(surveillance_rules),
                     VerificationContract(verification),
                     AreaContract(verification.utilities),
                     ServiceContract(service), RegistryContract(registry)])  # fmt: skip


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    raw = config.get(name, {})
    if not isinstance(raw, dict):
        raise ValueError(f"{name}: expected an object")
    return raw
