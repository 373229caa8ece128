"""Reading scenario files and merging overrides: the built-in names, and a YAML loader stricter than YAML 1.1 where that
reads silently wrong (a key given twice, an integer with a leading zero). Errors are
:class:`ScenarioError`, naming the file, the key and the line."""

from __future__ import annotations

import copy
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class ScenarioError(ValueError):
    """A scenario file or override is invalid; the message names the field."""


class ScenarioArgumentError(ScenarioError, TypeError):
    """An unknown top-level keyword argument: a ``TypeError`` (as Python raises for one) and a ScenarioError."""


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads YAML 1.2 floats such as ``1e6`` and ``3.6e13``, and refuses
    what YAML 1.1 reads silently wrong: a key given twice in one mapping (PyYAML keeps the last) and an
    integer with a leading zero (``010`` is octal 8 in YAML 1.1, 10 in YAML 1.2). Errors name the key
    and the line.

    (PyYAML follows YAML 1.1, where an exponent needs a dot and a sign: ``1.0e+6``.)
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ScenarioError(
                    f"line {line}: key {key!r} given twice in one mapping (first at line {seen[key]}); "
                    "merge the two into one"
                )
            seen[key] = line
            if isinstance(value_node, yaml.ScalarNode) and _LEADING_ZERO.match(value_node.value or ""):
                if value_node.tag == "tag:yaml.org,2002:int" and value_node.style is None:
                    raise ScenarioError(
                        f"line {value_node.start_mark.line + 1}: {key}: got {value_node.value!r}, an integer "
                        f"with a leading zero (YAML 1.1 reads it as octal); write "
                        f"{int(value_node.value.replace('_', ''), 10)}, or 0o... for octal"
                    )
        return super().construct_mapping(node, deep=deep)


_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")
_INT_TAG = "tag:yaml.org,2002:int"
# YAML 1.2 integers (decimal, 0x hex, 0o octal; no sexagesimal), plus leading-zero ones so that
# construct_mapping can refuse them with the key's name
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _INT_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _INT_TAG,
    re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+)$"),
    list("-+0123456789"),
)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def builtin_names() -> list[str]:
    """Names of the scenarios shipped with the package (``scenarios/*.yaml``)."""
    root = resources.files("gaisnet_env.scenarios")
    return sorted(p.name[: -len(".yaml")] for p in root.iterdir() if p.name.endswith(".yaml"))


def read_yaml(source: str | Path) -> dict[str, Any]:
    """The mapping of a built-in scenario name or a YAML file; ScenarioError naming what is wrong."""
    text: str
    name = str(source)
    if name in builtin_names():
        text = resources.files("gaisnet_env.scenarios").joinpath(f"{name}.yaml").read_text()
    else:
        path = Path(source)
        if not path.exists():
            raise ScenarioError(
                f"scenario: {name!r} is neither a built-in ({', '.join(builtin_names())}) nor an existing file"
            )
        if path.is_dir():
            raise ScenarioError(f"scenario: {name!r} is a directory; pass a YAML file or a built-in name")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ScenarioError(
                f"scenario {name!r}: not UTF-8 text ({e.reason} at byte {e.start}); save the file as UTF-8"
            ) from None
    try:
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ScenarioError(f"scenario {name!r}: not valid YAML: {e}") from None
    except ScenarioError as e:
        raise ScenarioError(f"scenario {name!r}: {e}") from None
    return data if data is not None else {}


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``overrides`` into ``base``; dotted keys (``"reward.w_lat"``) address nested fields."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        parts = key.split(".")
        node = out
        for p in parts[:-1]:
            if node.get(p) is None:  # absent or null (e.g. reference_models.edge: null)
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                raise ScenarioError(f"{key}: {p} is not a section (got {node!r})")
        last = parts[-1]
        if isinstance(value, dict) and isinstance(node.get(last), dict):
            node[last] = merge_overrides(node[last], value)
        else:
            node[last] = copy.deepcopy(value)
    return out
