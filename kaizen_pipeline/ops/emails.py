"""Alert email rendering: subject, plain-text and HTML bodies for one EmailGroup."""

from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import quote

from kaizen_pipeline.ops.alerts import Alert, EmailGroup

_LABEL = {"critical": "CRITICAL", "warning": "WARNING", "info": "INFO"}
_COLOR = {"critical": "#b00020", "warning": "#b26a00", "info": "#555555", "resolved": "#1b7f3b"}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def run_url(ui_base_url: str, run_id: str | None) -> str | None:
    return f"{ui_base_url.rstrip('/')}/runs/{run_id}" if run_id else None


def asset_checks_url(ui_base_url: str, asset_key: str | None) -> str | None:
    if not asset_key:
        return None
    path = "/".join(quote(part, safe="") for part in asset_key.split("/"))
    return f"{ui_base_url.rstrip('/')}/assets/{path}?view=checks"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.6g}"


def _subject(group: EmailGroup) -> str:
    first = group.alerts[0]
    more = f" (+{len(group.alerts) - 1} more)" if len(group.alerts) > 1 else ""
    run = f" in run {group.run_id[:8]}" if group.run_id else ""
    if group.kind == "resolved":
        what = "passes again" if first.kind == "check" else "succeeds again"
        return f"[RESOLVED] {first.title} {what}{more}"
    label = _LABEL[group.priority]
    verb = "failed" if group.kind == "firing" else "still failing"
    return f"[{label}] {first.title} {verb}{run}{more}"


def _rows(alert: Alert, group: EmailGroup, ui_base_url: str) -> list[tuple[str, str, str | None]]:
    """(label, text, link) lines describing one alert."""
    link_run = group.run_id if group.kind == "resolved" else alert.last_run_id
    rows: list[tuple[str, str, str | None]] = [("Priority", _LABEL[alert.priority], None)]
    if alert.kind == "check":
        rows += [
            ("Asset", alert.asset_key or "", asset_checks_url(ui_base_url, alert.asset_key)),
            ("Check", f"{alert.check_name} (severity {alert.severity or 'n/a'})", None),
            ("Value", _fmt(alert.value), None),
            ("Target", _fmt(alert.target), None),
            ("Deviation", _fmt(alert.deviation), None),
        ]
    else:
        rows.append(("Job", alert.job_name or "", None))
    if alert.description:
        rows.append(("Description", alert.description, None))
    if alert.detail:
        rows.append(("Detail", alert.detail, None))
    rows.append(
        ("Failing since", f"{alert.opened_at:%Y-%m-%d %H:%M:%S} UTC ({alert.failure_count} failures)", None)
    )
    if group.kind == "resolved" and alert.resolved_at:
        rows.append(("Resolved at", f"{alert.resolved_at:%Y-%m-%d %H:%M:%S} UTC", None))
    url = run_url(ui_base_url, link_run)
    if url:
        rows.append(("Run", url, url))
    return rows


def render_email(group: EmailGroup, ui_base_url: str) -> RenderedEmail:
    """Subject naming severity, asset and check; bodies with value, target, deviation, description, run link."""
    intro = {
        "firing": "An alert fired in kaizen_pipeline.",
        "repeat": "These alerts are still failing (repeat reminder).",
        "resolved": "These alerts have resolved.",
    }[group.kind]
    text_parts = [intro, ""]
    html_parts = [f"<p>{html.escape(intro)}</p>"]
    for alert in group.alerts:
        rows = _rows(alert, group, ui_base_url)
        text_parts.append(f"== {_LABEL[alert.priority]}: {alert.title}")
        text_parts += [f"  {label + ':':<14} {value}" for label, value, _ in rows]
        text_parts.append("")
        color = _COLOR["resolved" if group.kind == "resolved" else alert.priority]
        html_parts.append(
            f'<h3 style="color:{color};margin-bottom:4px">{html.escape(_LABEL[alert.priority])}: '
            f"{html.escape(alert.title)}</h3>"
        )
        cells = []
        for label, value, link in rows:
            shown = html.escape(value)
            if link:
                shown = f'<a href="{html.escape(link, quote=True)}">{shown}</a>'
            cells.append(
                f'<tr><th align="left" style="padding-right:12px">{html.escape(label)}</th>'
                f'<td style="white-space:pre-wrap">{shown}</td></tr>'
            )
        html_parts.append('<table cellspacing="0" cellpadding="2">' + "".join(cells) + "</table>")
    footer = f"Dagster UI: {ui_base_url}"
    text_parts.append(footer)
    html_parts.append(
        f'<p style="color:#777">Dagster UI: <a href="{html.escape(ui_base_url)}">{html.escape(ui_base_url)}</a></p>'
    )
    return RenderedEmail(
        subject=_subject(group),
        text="\n".join(text_parts),
        html="<html><body>" + "\n".join(html_parts) + "</body></html>",
    )
