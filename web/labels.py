"""The words the pages show for codes (states, severities, reasons...), marked for the catalogs."""

from __future__ import annotations

from collections.abc import Callable

from web.i18n import N_

STATES = {
    "open": N_("Open"),
    "acknowledged": N_("Acknowledged"),
    "dispatched": N_("Dispatched"),
    "resolved": N_("Resolved"),
    "dismissed": N_("Dismissed"),
}
SEVERITIES = {
    "info": N_("Info"),
    "warning": N_("Warning"),
    "major": N_("Major"),
    "critical": N_("Critical"),
}
DISMISS_REASONS = {
    "false_positive": N_("False positive"),
    "device_fault": N_("Device fault"),
    "permitted_activity": N_("Permitted activity"),
    "duplicate": N_("Duplicate"),
    "other": N_("Other (explain in the note)"),
}
TASK_KINDS = {
    "remote": N_("Remote supervision"),
    "onsite": N_("On-site inspection"),
    "joint": N_("Joint inspection"),
}
TASK_STATUSES = {"planned": N_("Planned"), "in_progress": N_("In progress"), "done": N_("Done")}
CLUE_STATUSES = {"firing": N_("Firing"), "resolved": N_("Cleared")}
ROLES = {
    "viewer": N_("Viewer"),
    "officer": N_("Officer"),
    "admin": N_("Department admin"),
    "platform_admin": N_("Platform admin"),
}
TIMELINE = {
    "opened": N_("Alert opened"),
    "clue": N_("Clue added or changed"),
    "clue_added": N_("Clue added"),
    "clue_updated": N_("Clue updated"),
    "clue_resolved": N_("Clue cleared"),
    "acknowledge": N_("Acknowledged"),
    "dispatch": N_("Dispatched"),
    "resolve": N_("Resolved"),
    "dismiss": N_("Dismissed"),
    "reopen": N_("Reopened"),
    "auto_resolve": N_("Resolved automatically (clues quiet)"),
    "escalated": N_("Severity raised"),
    "overdue_escalated": N_("Escalated: not acknowledged in time"),
    "task": N_("Task changed"),
    "finding": N_("Finding recorded"),
    "subject_changed": N_("Subject changed"),
}
MATCHERS = {
    "subject": N_("this subject"),
    "rule": N_("this rule"),
    "device": N_("this device"),
    "department": N_("the whole department"),
}
NOTIFY_STATUSES = {
    "pending": N_("Pending"),
    "sent": N_("Sent"),
    "dead": N_("Dead (gave up)"),
    "suppressed": N_("Muted by a silence"),
}
CREDIT_GRADES = {
    "A": N_("A (good)"),
    "B": N_("B (general)"),
    "C": N_("C (poor)"),
    "D": N_("D (bad)"),
}
ERRORS = {
    "not_found": N_("Not found, or not visible to your department."),
    "refused": N_("This action is not allowed now."),
    "invalid": N_("The form has an error."),
    "unavailable": N_("This part of offsite is not running here."),
}
TABLES: dict[str, dict[str, str]] = {
    "state": STATES,
    "severity": SEVERITIES,
    "dismiss_reason": DISMISS_REASONS,
    "task_kind": TASK_KINDS,
    "task_status": TASK_STATUSES,
    "clue_status": CLUE_STATUSES,
    "role": ROLES,
    "timeline": TIMELINE,
    "matcher": MATCHERS,
    "notify_status": NOTIFY_STATUSES,
    "credit_grade": CREDIT_GRADES,
    "error": ERRORS,
}


def labeller(gettext: Callable[[str], str]) -> Callable[[str, str | None], str]:
    """`label('state', 'open')` -> '待处理'; an unknown code is shown as it is."""

    def label(table: str, code: str | None) -> str:
        if code is None:
            return ""
        msg = TABLES[table].get(code)
        return gettext(msg) if msg is not None else code

    return label
