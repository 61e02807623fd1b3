"""The log handlers: chatty HTTP client lines at DEBUG, pipe ids from the task context."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from fustor_agent import logs
from fustor_agent.home import Home


class _Err:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def captured(capsys: pytest.CaptureFixture[str]) -> Iterator[_Err]:
    yield _Err(capsys)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_fustor", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(logging.WARNING)


def _setup(tmp_path: Path, level: str) -> None:
    logs.setup_logging(Home(tmp_path), logs.LogSetup(level=level, format="json", file=False))


def test_http_client_request_lines_are_debug(tmp_path: Path, captured: _Err) -> None:
    _setup(tmp_path, "info")
    logging.getLogger("httpx").info('HTTP Request: POST http://f/heartbeat "HTTP/1.1 200 OK"')
    logging.getLogger("fustor_agent.x").info("kept")
    assert [json.loads(line)["message"] for line in captured.getvalue().splitlines()] == ["kept"]

    _setup(tmp_path, "debug")
    logging.getLogger("httpx").info("HTTP Request: GET http://f/")
    (entry,) = [json.loads(line) for line in captured.getvalue().splitlines()][1:]
    assert (entry["level"], entry["logger"]) == ("DEBUG", "httpx")


def test_pipe_id_comes_from_the_context(tmp_path: Path, captured: _Err) -> None:
    _setup(tmp_path, "info")
    token = logs.current_pipe.set("p7")
    try:
        logging.getLogger("fustor_agent.y").warning("inside")
    finally:
        logs.current_pipe.reset(token)
    logging.getLogger("fustor_agent.y").warning("outside")
    entries = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [(e["message"], e.get("pipe_id")) for e in entries] == [
        ("inside", "p7"),
        ("outside", None),
    ]


def test_an_unknown_level_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.setup_logging(Home(tmp_path), logs.LogSetup(level="loud"))
