"""consensus/ (and the ledger below it) import nothing that does I/O."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "trio", "asyncio", "socket", "time", "os", "random", "threading", "multiprocessing",
    "subprocess", "select", "selectors", "datetime", "secrets", "sqlite3", "io", "pathlib",
    "shutil", "signal", "urllib", "http", "logging", "libp2p", "node", "sim", "oracle", "bench",
}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
            names.add("__import__")
    return names


@pytest.mark.parametrize("path", sorted((ROOT / "consensus").rglob("*.py")), ids=lambda p: p.name)
def test_consensus_module_is_pure(path: Path) -> None:
    bad = imported_modules(path) & (FORBIDDEN | {"__import__"})
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_check_itself_sees_imports(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import os.path\nfrom time import monotonic\n")
    assert imported_modules(sample) >= {"os", "time"}
