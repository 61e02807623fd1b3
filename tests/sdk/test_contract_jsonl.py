"""The example third-party source (docs/examples/fustor-source-jsonl) passes the contract.

The example is not installed in the test environment (its entry point would show up in every
other test's plugin list), so its sources are put on ``sys.path``; the test that installs it
for real, with pip, is test_example_driver.py.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "fustor-source-jsonl"
sys.path.insert(0, str(EXAMPLE / "src"))


def _load_example_tests() -> type:
    spec = importlib.util.spec_from_file_location(
        "fustor_source_jsonl_example_tests", EXAMPLE / "tests" / "test_contract.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TestJsonlSourceContract


_Contract = _load_example_tests()

pytest_plugins = ["fustor_agent_sdk.testing"]


class TestJsonlExampleContract(_Contract):
    entry_point = None  # not installed here; test_example_driver.py checks the entry point
