"""The fusion sender's metrics: which ``FusionSender.status()`` keys ``/metrics`` exports.

Left out (JSON status only): the endpoint and session (text), ``last_latency_ms`` (the host's
``fustor_agent_send_duration_seconds`` histogram measures every send), ``last_error``, and
``rows_sent`` / ``batches_rejected``, the same values as the host's per-pipe
``fustor_agent_rows_sent_total`` and ``fustor_agent_rejected_batches_total``.
"""

from __future__ import annotations

from fustor_agent_sdk import MetricKind, MetricSpec, MetricUnit

__all__ = ["FUSION_METRICS"]

_C, _G = MetricKind.COUNTER, MetricKind.GAUGE

FUSION_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("batches_sent", _C, "Batches Fusion accepted."),
    MetricSpec("rows_left_out", _C, "Rows left out of a batch because Fusion cannot take them."),
    MetricSpec("sessions_opened", _C, "Sessions opened on Fusion."),
    MetricSpec("sessions_lost", _C, "Sessions Fusion no longer knew (a new one follows)."),
    MetricSpec("tombstones_cleared", _C,
               "Re-created paths whose Fusion tombstone was cleared in the same send (B15)."),
    MetricSpec("requests", _C, "HTTP requests made to Fusion."),
    MetricSpec("request_failures", _C, "HTTP requests that failed (network or 5xx)."),
    MetricSpec("bytes_sent", _C, "Request body bytes sent to Fusion.", MetricUnit.BYTES,
               name="sent"),
    MetricSpec("last_http_status", _G, "HTTP status code of Fusion's last answer."),
    MetricSpec("session_timeout_sec", _G, "Session timeout Fusion gave the current session.",
               MetricUnit.SECONDS, name="session_timeout"),
)  # fmt: skip
