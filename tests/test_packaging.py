"""Packaging: the built wheel installs and works outside the repository, next to a user project
that has its own ``models`` and ``agents`` packages; scenarios and ``py.typed`` ship as package
data; versions agree (pyproject, ``__version__``, CHANGELOG)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import gaisnet_env

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    tomllib = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "gaisnet_env", "models", "agents", "scenarios")


def _pyproject_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    if tomllib is not None:
        return tomllib.loads(text)["project"]["version"]
    return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)  # type: ignore[union-attr]


def test_version_is_semantic_and_consistent() -> None:
    version = _pyproject_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert gaisnet_env.__version__ == version
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in changelog and "Semantic Versioning" in changelog
    assert re.search(rf"^## \[{re.escape(version)}\]", changelog, re.M)


def test_py_typed_marker_in_source() -> None:
    assert (Path(gaisnet_env.__file__).parent / "py.typed").is_file()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy of the sources (no build isolation: no network needed)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(p, src / name)
    out = tmp_path_factory.mktemp("wheelhouse")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src), "-w", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    wheels = list(out.glob("gaisnet_env-*.whl"))
    assert len(wheels) == 1, [p.name for p in out.iterdir()]
    return wheels[0]


def test_wheel_contents(wheel: Path) -> None:
    assert wheel.name.startswith(f"gaisnet_env-{_pyproject_version()}-py3-none-any")
    names = set(zipfile.ZipFile(wheel).namelist())
    for builtin in gaisnet_env.BUILTIN_SCENARIOS:
        assert f"gaisnet_env/scenarios/{builtin}.yaml" in names
    assert "gaisnet_env/py.typed" in names
    assert {"gaisnet_env/models/__init__.py", "gaisnet_env/agents/__init__.py", "gaisnet_env/env.py"} <= names
    top = {n.split("/")[0] for n in names}
    assert top == {"gaisnet_env", f"gaisnet_env-{_pyproject_version()}.dist-info"}, top  # no bare models/, agents/


_PROBE = textwrap.dedent(
    """
    import json, sys
    from importlib import resources
    import gymnasium as gym
    import models, agents                      # the user's own packages
    import gaisnet_env
    from gaisnet_env.wrappers import RecordMetrics

    env = RecordMetrics(gym.make("gaisnet_env/GaisNet-tiny-v0"))
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    scen = resources.files("gaisnet_env.scenarios")
    print(json.dumps({
        "gaisnet_env": gaisnet_env.__file__,
        "gaisnet_models": sys.modules["gaisnet_env.models"].__file__,
        "models": models.WHO, "agents": agents.WHO,
        "scenarios": sorted(p.name for p in scen.iterdir() if p.name.endswith(".yaml")),
        "py_typed": resources.files("gaisnet_env").joinpath("py.typed").is_file(),
        "version": gaisnet_env.__version__,
        "reward": reward, "obs_shape": list(obs.shape),
    }))
    """
)


def test_installed_wheel_works_outside_the_repo_next_to_user_packages(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    project = tmp_path / "userproject"
    for pkg in ("models", "agents"):
        (project / pkg).mkdir(parents=True)
        (project / pkg / "__init__.py").write_text(f"WHO = 'user {pkg}'\n")
    (project / "probe.py").write_text(_PROBE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # the user's project first, then the installed wheel (ahead of the editable install of this repo)
    env["PYTHONPATH"] = os.pathsep.join([str(project), str(target)])
    env["PYTHONNOUSERSITE"] = "1"
    res = subprocess.run(
        [sys.executable, "-P", "probe.py"] if sys.version_info >= (3, 11) else [sys.executable, "probe.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(out["gaisnet_env"]).is_relative_to(target), out["gaisnet_env"]
    assert Path(out["gaisnet_models"]).is_relative_to(target / "gaisnet_env" / "models")
    assert (out["models"], out["agents"]) == ("user models", "user agents")
    assert set(gaisnet_env.BUILTIN_SCENARIOS) <= {s[: -len(".yaml")] for s in out["scenarios"]}
    assert out["py_typed"] is True and out["version"] == _pyproject_version()
    assert out["obs_shape"] == [25] and isinstance(out["reward"], float)
