"""The ``fusion`` sender: one session with a Fusion 0.8.17 receiver (docs/fusion-protocol.md)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import httpx

from fustor_agent_sdk import PipeContext, SenderConfig, SenderDriver
from fustor_core import (
    SEND_OK,
    Batch,
    Command,
    DriverError,
    HeartbeatResult,
    MessageSource,
    PhaseSignal,
    Role,
    Row,
    SendResult,
    SendStatus,
    SessionInfo,
    SessionLostError,
)
from fustor_sender_http.config import FusionSenderConfig
from fustor_sender_http.consistency import Consistency
from fustor_sender_http.metrics import FUSION_METRICS
from fustor_sender_http.redact import install_http_log_filter, redact, short_id
from fustor_sender_http.responses import (
    detail_of,
    ingest_result,
    is_transient,
    parse_commands,
    parse_heartbeat,
    parse_role,
    parse_session,
)
from fustor_sender_http.state import SessionStore
from fustor_sender_http.tombstones import DeletedPaths, clearing_bodies
from fustor_sender_http.transport import FusionClient, describe_failure
from fustor_sender_http.watermark import WatermarkLead
from fustor_sender_http.wire import encode_batch, encode_body, signal_body, without_audit_flags

__all__ = ["FusionSender"]

logger = logging.getLogger(__name__)

SESSION_PATH = "/api/v1/pipe/session/"
MANAGEMENT_PROBE_PATH = "/api/v1/management/views"
_LOCKED = "currently locked"
_USERINFO = re.compile(r"//[^/@]*@")
_PARTIAL_BATCHES = 64
"""Split batches whose acknowledged requests are remembered for a retry: more than can be in
flight at once (``snapshot_concurrency``); one the host gave up on is dropped in turn."""


HEARTBEAT_BYTES = 16 << 20


def _may_be_wrong_port(response: httpx.Response) -> bool:
    """A failed create that a client of the management port would get (409 for an internal
    error, 401 for its other key rules, 404/405 for shadowed routes), not the lock."""
    code = response.status_code
    return code in (401, 404, 405) or (code == 409 and _LOCKED not in detail_of(response).lower())


class FusionSender(SenderDriver):
    """Speaks the Fusion 0.8.17 receiver protocol for one pipe. The host decides roles."""

    name = "fusion"
    config_model = FusionSenderConfig
    metrics = FUSION_METRICS

    def __init__(
        self,
        sender_id: str,
        config: SenderConfig,
        context: PipeContext,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(config, FusionSenderConfig):
            config = FusionSenderConfig.model_validate(config.model_dump())
        super().__init__(sender_id, config, context)
        self.cfg = config
        self.params = config.driver_params
        self.max_batch_size = self.params.max_batch_size
        self.http = FusionClient(config, transport)
        self.consistency = Consistency(self.http, sender_id)
        self._store = SessionStore(context.state_dir)
        self._session: SessionInfo | None = None
        self._lost_session_id: str | None = None
        self._role: Role | None = None
        self._audit_open = False
        """From this leader's audit start until Fusion acknowledged its end. Fusion 0.8.17
        takes a directory's ``audit_skipped`` flag from its last accepted row and, at the
        audit end, deletes the children the audit did not report of each directory whose
        flag is false (protocol §5.5). A source marks the realtime row of a directory its
        running audit skipped (unchanged, files not listed) with the flag, or that row made
        Fusion delete them (helper 26); outside this window the flag is dropped, so that no
        directory keeps it once the audit is judged."""
        self._pending_commands: list[Command] = []
        self._wrong_port: str | None = None
        """Set when the endpoint turned out to be Fusion's management port."""
        self._port_checked = False
        # Bodies of a split batch already acknowledged, so that a retry resends only the rest
        # (at most _PARTIAL_BATCHES: a batch the host gave up on must not stay held).
        self._acked_bodies: dict[int, tuple[Batch, int]] = {}
        self._counters = {
            "batches_sent": 0,
            "rows_sent": 0,
            "batches_rejected": 0,
            "rows_left_out": 0,
            "sessions_opened": 0,
            "sessions_lost": 0,
            "tombstones_cleared": 0,
        }
        self._deleted = DeletedPaths(log=context.state_dir / "fusion-deleted-paths.log")
        """Paths this sender's realtime deletes left a Fusion tombstone on (B15)."""
        self._lead = WatermarkLead(context.state_dir / "fusion-watermark-lead.json")
        """How far ahead Fusion's watermark, and so its tombstones, may run (protocol §5.8)."""
        install_http_log_filter()

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        return self._session.session_id if self._session else None

    def _session_lost(self, reason: str) -> None:
        if self._session is not None:
            logger.warning(
                "fusion sender %s: session %s lost (%s)",
                self.sender_id,
                short_id(self._session.session_id),
                reason,
            )
            self._lost_session_id = self._session.session_id
            self._session = None
            self._counters["sessions_lost"] += 1

    # -- sessions ---------------------------------------------------------------------------

    async def open_session(self) -> SessionInfo:
        endpoint = self.cfg.endpoint
        previous = self.session_id or self._lost_session_id
        if previous is None:
            previous = await asyncio.to_thread(self._store.load, endpoint)
        self._session = None
        self._acked_bodies.clear()
        self._pending_commands.clear()
        request: dict[str, Any] = {
            "task_id": self.context.task_id,
            "client_info": {"source_uri": self.context.source_uri},
        }
        if self.params.session_timeout_sec:
            request["session_timeout_seconds"] = self.params.session_timeout_sec
        try:
            response = await self.http.request("POST", SESSION_PATH, body=encode_body(request))
        except httpx.HTTPError as exc:
            raise DriverError(
                f"cannot reach Fusion at {_USERINFO.sub('//', endpoint)}: "
                f"{redact(describe_failure(exc))}",
                retriable=True,
            ) from exc
        if response.status_code != 200:
            if _may_be_wrong_port(response) and await self._on_management_port():
                raise DriverError(self._wrong_port_message(), retriable=False)
            raise self._create_error(response)
        info = parse_session(response, self.params.session_timeout_sec)
        if not self._port_checked:
            self._port_checked = True
            if await self._on_management_port():
                # Sessions open there too, but heartbeats, closing and consistency calls
                # follow other rules (docs/fusion-protocol.md): say so, keep the pipe not ready.
                self._wrong_port = self._wrong_port_message()
                logger.error("fusion sender %s: %s", self.sender_id, self._wrong_port)
        self._session = info
        self._role = info.role
        self._audit_open = False  # a new session ends any audit in Fusion (B19)
        self._lost_session_id = None
        self._counters["sessions_opened"] += 1
        try:
            await asyncio.to_thread(self._store.save, endpoint, info.session_id)
        except OSError as exc:
            # Only the clean-up after a crash depends on it: worth a warning, not a failure.
            logger.warning(
                "fusion sender %s: cannot keep the session id in %s: %s",
                self.sender_id,
                self._store.path,
                exc,
            )
        logger.info(
            "fusion sender %s: session %s opened as %s (timeout %gs)",
            self.sender_id,
            short_id(info.session_id),
            info.role.value,
            info.timeout_sec,
        )
        if previous and previous != info.session_id:
            info = await self._retire(previous, info)
        return info

    def _create_error(self, response: httpx.Response) -> DriverError:
        code, detail = response.status_code, detail_of(response)
        where = f"Fusion at {_USERINFO.sub('//', self.cfg.endpoint)}"
        if code == 401:
            message = (
                f"{where} refused the API key (401 {detail}): check the credential of sender "
                f"{self.sender_id!r} against receivers.<id>.api_keys in Fusion's config"
            )
        elif code == 400:
            message = (
                f"{where} has no running pipe for this API key (400 {detail}): check that the "
                "key's pipe_id names a pipe with a usable view in Fusion's config"
            )
        elif code == 409 and _LOCKED in detail.lower():
            message = (
                f"{where} has the view locked by another session (409 {detail}); "
                "retrying once it ends (allow_concurrent_push: false)"
            )
        elif code == 409:
            # Fusion answers 409 for any internal error of session create, not only the lock.
            message = f"{where} refused to open a session (409 {detail})"
        elif code in (301, 302, 303, 307, 308, 404):
            message = (
                f"{where} has no session API at {SESSION_PATH} (HTTP {code}): the endpoint must be "
                "Fusion's receiver URL (receivers.<id>.port, default 8102), without a path"
            )
        else:
            message = f"{where} could not open a session: HTTP {code} {detail}"
        return DriverError(message, retriable=is_transient(code))

    async def _retire(self, previous: str, info: SessionInfo) -> SessionInfo:
        """Close this agent's earlier session, so a restarted agent does not queue behind it.

        Fusion promotes the oldest remaining session when a leader goes; a heartbeat right
        after tells whether that is now us (its commands are kept for the next heartbeat).
        """
        await self._delete(previous)
        logger.info(
            "fusion sender %s: closed the earlier session %s of this pipe",
            self.sender_id,
            short_id(previous),
        )
        if info.role is Role.LEADER:
            return info
        try:
            beat = await self.heartbeat(can_realtime=False)
        except DriverError as exc:
            logger.debug("heartbeat after closing the earlier session failed: %s", exc)
            return info
        self._pending_commands = list(beat.commands)
        if beat.role is info.role:
            return info
        return SessionInfo(
            session_id=info.session_id,
            role=beat.role,
            timeout_sec=info.timeout_sec,
            audit_interval_sec=info.audit_interval_sec,
            sentinel_interval_sec=info.sentinel_interval_sec,
        )

    async def _delete(self, session_id: str) -> bool:
        try:
            response = await self.http.request(
                "DELETE", f"{SESSION_PATH}{session_id}", read_timeout=min(5.0, self._beat_timeout())
            )
        except httpx.HTTPError as exc:
            logger.warning(
                "fusion sender %s: could not close session %s: %s",
                self.sender_id,
                short_id(session_id),
                redact(describe_failure(exc)),
            )
            return False
        return response.status_code == 200

    async def _on_management_port(self) -> bool:
        """Whether the endpoint is Fusion's management (main) port: only that one serves
        ``/api/v1/management/views``; a receiver port answers 404."""
        try:
            response = await self.http.request("GET", MANAGEMENT_PROBE_PATH, read_timeout=5.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _wrong_port_message(self) -> str:
        return (
            f"{_USERINFO.sub('//', self.cfg.endpoint)} is Fusion's management port (its "
            "top-level port:, default 8101), not its receiver port: set the endpoint of sender "
            f"{self.sender_id!r} to receivers.<id>.port in Fusion's config (default 8102)"
        )

    async def check_connection(self) -> list[str]:
        """For ``validate --connect``: the endpoint is a receiver port, the session opens,
        and Fusion applies audit calls for this key (pipe id = view id, bug B2).

        The B2 check sends ``audit/start`` only when the session leads (so no other leader's
        audit is running; opening any session already restarts Fusion's audit bookkeeping)
        and never an audit end: nothing can be deleted by it.
        """
        info = await self.open_session()
        problems: list[str] = [self._wrong_port] if self._wrong_port else []
        try:
            if info.role is Role.LEADER and not problems:
                result = await self.consistency.audit("start")
                if not result.ok:
                    problems.append(f"audit calls fail: {result.detail}")
                elif self.consistency.misconfiguration:
                    problems.append(self.consistency.misconfiguration)
        finally:
            await self.close_session()
        return problems

    def _beat_timeout(self) -> float:
        if self.params.heartbeat_timeout_sec:
            return self.params.heartbeat_timeout_sec
        timeout = self._session.timeout_sec if self._session else 30.0
        return max(1.0, min(10.0, timeout / 3))

    async def heartbeat(self, *, can_realtime: bool) -> HeartbeatResult:
        session = self._session
        if session is None:
            raise SessionLostError("no open session")
        url = f"{SESSION_PATH}{session.session_id}/heartbeat"
        body = encode_body({"can_realtime": can_realtime})
        try:
            # Queued scan commands ride on the answer, each delivered only once: leave room.
            response = await self.http.request(
                "POST",
                url,
                body=body,
                read_timeout=self._beat_timeout(),
                max_response_bytes=HEARTBEAT_BYTES,
            )
        except httpx.HTTPError as exc:
            raise DriverError(
                f"cannot reach Fusion at {_USERINFO.sub('//', self.cfg.endpoint)}: "
                f"{redact(describe_failure(exc))}",
                retriable=True,
            ) from exc
        code = response.status_code
        if code in (404, 419):
            reason = f"Fusion no longer knows the session (HTTP {code}: {detail_of(response)})"
            self._session_lost(reason)
            raise SessionLostError(reason)
        if code != 200:
            raise DriverError(
                f"Fusion answered HTTP {code} {detail_of(response)}", retriable=is_transient(code)
            )
        data = parse_heartbeat(response)
        if data.get("status") == "error":
            reason = f"Fusion reported an error for the session: {redact(str(data.get('message')))}"
            self._session_lost(reason)
            raise SessionLostError(reason)
        role = parse_role(data.get("role"), "heartbeat")
        if role is not self._role:
            logger.info(
                "fusion sender %s: session %s is now %s",
                self.sender_id,
                short_id(session.session_id),
                role.value,
            )
        self._role = role
        commands = self._pending_commands + parse_commands(data.get("commands"))
        self._pending_commands = []
        return HeartbeatResult(role=role, commands=commands)

    async def close_session(self) -> None:
        session, self._session = self._session, None
        self._role = None
        if session is None:
            return
        if await self._delete(session.session_id):
            logger.info(
                "fusion sender %s: session %s closed", self.sender_id, short_id(session.session_id)
            )
            await asyncio.to_thread(self._store.clear)
        else:
            # Kept in the state file: the next start closes it once it has a new session.
            self._lost_session_id = session.session_id

    async def close(self) -> None:
        await self.http.aclose()

    # -- data -------------------------------------------------------------------------------

    async def _post_ingest(
        self, session_id: str, body: bytes, read_timeout: float | None = None
    ) -> SendResult:
        try:
            response = await self.http.request(
                "POST",
                f"/api/v1/pipe/ingest/{session_id}/events",
                body=body,
                read_timeout=read_timeout,
            )
        except httpx.HTTPError as exc:
            return SendResult(SendStatus.RETRY, redact(describe_failure(exc)))
        result = ingest_result(response)
        if result.status is SendStatus.SESSION_LOST:
            self._session_lost(result.detail)
        elif result.status is SendStatus.REJECTED:
            self._counters["batches_rejected"] += 1
            logger.error(
                "fusion sender %s: Fusion rejected a request (%s)",
                self.sender_id,
                result.detail,
            )
        elif not result.ok:
            self.http.last_error = result.detail
        return result

    async def send(self, batch: Batch) -> SendResult:
        session = self._session
        if session is None:
            return SendResult(SendStatus.SESSION_LOST, "no open session")
        realtime = batch.message_source is MessageSource.REALTIME
        strip = realtime and not self._audit_open
        encoded = encode_batch(
            batch,
            max_batch_size=self.params.max_batch_size,
            max_rows_per_event=self.params.max_rows_per_event,
            strip_audit_flags=strip,
        )
        # After the batch: re-created paths that this sender's deletes left a tombstone on.
        clear: list[Row] = []
        if realtime:
            self._lead.note(batch)
            clear = self._deleted.to_clear(batch)
        if clear:
            rows = without_audit_flags(clear) if strip else clear
            encoded.bodies.extend(
                clearing_bodies(
                    rows,
                    self.params.max_batch_size,
                    self.params.max_rows_per_event,
                    lead=self._lead.seconds,
                )
            )
        if encoded.dropped_rows:
            self._counters["rows_left_out"] += encoded.dropped_rows
        key = id(batch)
        held = self._acked_bodies.pop(key, None)
        done = held[1] if held is not None and held[0] is batch else 0
        for number in range(done, len(encoded.bodies)):
            result = await self._post_ingest(session.session_id, encoded.bodies[number])
            if not result.ok:
                if result.status is SendStatus.RETRY and number > 0:
                    self._acked_bodies[key] = (batch, number)
                    if len(self._acked_bodies) > _PARTIAL_BATCHES:  # the oldest goes again whole
                        del self._acked_bodies[next(iter(self._acked_bodies))]
                return result
        self._counters["batches_sent"] += 1
        self._counters["rows_sent"] += encoded.rows
        if realtime:
            self._deleted.commit(batch, clear)
            self._counters["tombstones_cleared"] += len(clear)
        if encoded.dropped_rows and batch.message_source is MessageSource.AUDIT:
            # At the audit end Fusion deletes what the audit did not report (protocol §5.5):
            # rows left out here must make the host hold the end back, as for a rejection.
            return SendResult(
                SendStatus.REJECTED,
                f"{encoded.dropped_rows} audit row(s) without path or modified_time left out",
            )
        return SEND_OK

    async def signal(self, signal: PhaseSignal, **details: Any) -> SendResult:
        session = self._session
        if session is None:
            return SendResult(SendStatus.SESSION_LOST, "no open session")
        sid = session.session_id
        if signal is PhaseSignal.SNAPSHOT_END:
            return await self._post_ingest(sid, signal_body("snapshot", is_end=True))
        if signal is PhaseSignal.AUDIT_START:
            self._audit_open = True
            return await self.consistency.audit("start")
        if signal is PhaseSignal.AUDIT_END:
            # Fusion answers only after draining its queue (at most 30 s, then it finalises
            # anyway) and finalising the audit. No `audit/end` call after it, unlike the
            # reference agent: it does nothing after a finalised audit, and after a drain
            # that timed out, the audit rows still queued have started a new audit in
            # Fusion (protocol §5.5), which that call would finalise half-seen, deleting
            # every child of its directories that it had not seen yet (helper 18: 63,000
            # files). Left open, that audit is reset by the next audit's start.
            result = await self._post_ingest(
                sid, signal_body("audit", is_end=True), self.params.audit_end_timeout_sec
            )
            if result.ok:  # finalised: Fusion has judged the directories' flags
                self._audit_open = False
            return result
        if signal is PhaseSignal.SCAN_END:
            metadata = {"scan_path": details["scan_path"], "job_id": details["job_id"]}
            return await self._post_ingest(sid, signal_body("job_complete", metadata=metadata))
        raise DriverError(f"unknown phase signal {signal!r}", retriable=False)

    # -- sentinel ---------------------------------------------------------------------------

    async def sentinel_tasks(self) -> list[str]:
        return await self.consistency.sentinel_tasks()

    async def sentinel_feedback(self, updates: list[Row]) -> SendResult:
        return await self.consistency.sentinel_feedback(updates)

    # -- status -----------------------------------------------------------------------------

    def health(self) -> str | None:
        return self._wrong_port or self.consistency.misconfiguration

    def status(self) -> dict[str, Any]:
        session = self._session
        return {
            "endpoint": _USERINFO.sub("//", self.cfg.endpoint),
            "session": short_id(session.session_id) if session else None,
            "role": self._role.value if self._role and session else None,
            "session_timeout_sec": session.timeout_sec if session else None,
            **self._counters,
            **self.http.figures(),
            "misconfiguration": self.consistency.misconfiguration,
        }
