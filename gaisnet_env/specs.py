"""Policy specs on the command line: ``name:key=value,key=value`` (a heuristic or the oracle with its
settings, or a model path)."""

from __future__ import annotations

from typing import Any


def parse_value(text: str) -> Any:
    """A command-line value as int, float, bool or (else) str."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value,key=value`` -> ``(name, params)`` (values parsed as int/float/bool/str)."""
    name, _, rest = spec.partition(":")
    params: dict[str, Any] = {}
    if rest and "=" in rest:
        for part in rest.split(","):
            k, _, v = part.partition("=")
            params[k.strip()] = parse_value(v.strip())
    elif rest:  # a path such as C:\... or a name with a colon: keep whole
        return spec, {}
    return name, params
