"""On-demand scans asked for by the peer: ``MessageSource.SCAN`` rows, then ``SCAN_END``."""

from __future__ import annotations

import contextlib
import logging

from fustor_agent.runtime.delivery import Delivery
from fustor_agent.runtime.stats import PipeState
from fustor_agent_sdk import Phase, SourceDriver
from fustor_core import PhaseSignal, ScanCommand, SessionLostError

__all__ = ["run_scan"]

logger = logging.getLogger(__name__)


async def run_scan(
    pipe_id: str, source: SourceDriver, delivery: Delivery, command: ScanCommand, state: PipeState
) -> None:
    """Scan and report; the completion is sent even when the scan failed or was refused."""
    rows = 0
    try:
        if Phase.SCAN not in source.phases:
            logger.warning(
                "pipe %s: source cannot scan; job %s completes empty", pipe_id, command.job_id
            )
        else:
            batches = source.scan(command.path, command.recursive)
            async with contextlib.aclosing(batches):  # type: ignore[type-var]
                async for batch in batches:
                    await delivery.send(batch)
                    rows += batch.row_count
    except SessionLostError:
        raise
    except Exception as exc:
        state.error(f"scan job {command.job_id} failed: {exc}")
        logger.warning(
            "pipe %s: scan job %s of %r failed: %s", pipe_id, command.job_id, command.path, exc
        )
    await delivery.signal(PhaseSignal.SCAN_END, scan_path=command.path, job_id=command.job_id)
    logger.info("pipe %s: scan job %s done (%d rows)", pipe_id, command.job_id, rows)
