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
NOTIFY_EVENTS = {
    "opened": N_("Alert opened"),
    "escalated": N_("Severity raised"),
    "reopened": N_("Reopened"),
    "repeat": N_("Reminder (still open)"),
    "resolved": N_("Resolved"),
    "dismissed": N_("Dismissed"),
}
CREDIT_GRADES = {
    "A": N_("A (good)"),
    "B": N_("B (general)"),
    "C": N_("C (poor)"),
    "D": N_("D (bad)"),
    # Jiangsu's five-colour environmental credit (subjects.models.EnvColour)
    "green": N_("Green"),
    "blue": N_("Blue"),
    "yellow": N_("Yellow"),
    "red": N_("Red"),
    "black": N_("Black"),
}
# One sentence per refusal code of the alerts package (alerts.errors.Refusal), and the
# workbench's own form checks; a test fails when a code has no Chinese sentence.
REFUSALS = {
    "other_department": N_("Your department takes no part in this."),
    "system_only": N_("Only offsite itself does this."),
    "not_allowed": N_("This action is not possible in the current state."),
    "reason_required": N_("Choose a reason."),
    "reason_unexpected": N_("Only dismissing takes a reason."),
    "note_required": N_('The reason "other" needs a note.'),
    "already_open": N_("The subject already has an open alert; this one cannot be reopened."),
    "lead_only": N_("Only the lead department closes this."),
    "findings_required": N_("Closing needs findings: write what was found and done."),
    "task_done": N_("The task is done; findings are closed."),
    "finding_empty": N_("A finding needs a text or a photo."),
    "too_many_photos": N_("Too many photos in one finding."),
    "photo_too_large": N_("A photo is too large."),
    "photo_type": N_("A photo is not a JPEG, PNG or WebP image."),
    "silence_no_department": N_("A silence belongs to a department."),
    "silence_naive_time": N_("The time needs its zone."),
    "silence_end_before_start": N_("The end must be later than the start."),
    "silence_too_long": N_("A silence lasts at most 90 days from its start."),
    "silence_reason_required": N_("A silence needs a reason."),
    "silence_value_required": N_("Say what the silence mutes."),
    "silence_expired": N_("This silence has ended already."),
    "silence_end_in_past": N_("The new end must be later than now."),
    "silence_end_not_later": N_("The new end must be later than the current end."),
    "draw_no_department": N_("A draw belongs to a department."),
    "draw_not_supervised": N_("Your department does not supervise some of these subjects."),
    "draw_no_draw_in_period": N_("Your department has no draw in this period; draw first."),
    "draw_empty_scope": N_("Your department supervises no subjects to draw from."),
    "draw_scope_changed": N_("The department's subjects changed since the preview; preview again."),
    # the workbench's own checks
    "silence_target": N_("Choose a rule or the subject to silence."),
    "rule_unknown": N_("That rule is not in the loaded rule pack."),
    "bad_time": N_("Enter a valid date and time."),
    "bad_period": N_("The period is letters, digits and - . _ only (e.g. 2026-Q4)."),
}
WEB_REFUSALS = ("silence_target", "rule_unknown", "bad_time", "bad_period")
# How the audit chain broke (alerts.audit.Break).
AUDIT_BREAKS = {
    "missing": N_("an entry is missing"),
    "prev_mismatch": N_("the entry does not link to the one before it"),
    "contents": N_("the entry's contents were changed after it was written"),
    "rewritten": N_("the chain was rewritten: the entry differs from its signed checkpoint"),
    "truncated": N_("entries after a signed checkpoint were removed"),
}
CREDIT_SCHEMES = {
    "abcd": N_("Credit grade (A–D)"),
    "jiangsu_env": N_("Jiangsu environmental credit (five colours)"),
}
ERRORS = {
    "not_found": N_("Not found, or not visible to your department."),
    "forbidden": N_("Not allowed: your role may not do this, or the page is stale (reload it)."),
    "too_large": N_("The upload is too large."),
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
    "notify_event": NOTIFY_EVENTS,
    "credit_grade": CREDIT_GRADES,
    "credit_scheme": CREDIT_SCHEMES,
    "error": ERRORS,
    "refusal": REFUSALS,
    "audit_break": AUDIT_BREAKS,
}


def labeller(gettext: Callable[[str], str]) -> Callable[[str, str | None], str]:
    """`label('state', 'open')` -> '待处理'; an unknown code is shown as it is."""

    def label(table: str, code: str | None) -> str:
        if code is None:
            return ""
        msg = TABLES[table].get(code)
        return gettext(msg) if msg is not None else code

    return label
