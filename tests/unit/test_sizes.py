"""The house rules anyone can check: rooms of a readable size, and every room on the architecture page."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "activemat"
#: Lines at most per module, class and function (decorators included).
LIMITS = {"module": 500, "class": 250, "function": 80}


def oversized(root: Path) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(root.parent)
        if len(text.splitlines()) > LIMITS["module"]:
            out.append(f"module {name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            kind = "class" if isinstance(node, ast.ClassDef) else \
                "function" if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            if kind is None:
                continue
            length = node.end_lineno - min([node.lineno] + [d.lineno for d in node.decorator_list]) + 1
            if length > LIMITS[kind]:
                out.append(f"{kind} {name}:{node.lineno} {node.name}: {length} lines")
    return out


def test_no_module_class_or_function_is_over_its_size_limit():
    assert oversized(PACKAGE) == []


def test_the_check_finds_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMITS["function"]))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n")
    (tmp_path / "short.py").write_text("def short():\n    return 1\n")
    assert [line.split(":")[0] for line in oversized(tmp_path)] == [f"function {tmp_path.name}/long.py"]


def test_every_module_is_on_the_architecture_page():
    page = (ROOT / "docs" / "explanation" / "architecture.md").read_text()
    listed = {line.strip() for line in page.splitlines() if line.startswith("   activemat.")}
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts) for p in PACKAGE.rglob("*.py")
               if p.name != "__init__.py"}
    assert sorted(modules - listed) == [] and sorted(listed - modules) == []
