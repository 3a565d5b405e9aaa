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
    "overdue": N_("Not acknowledged in time: escalated"),
}
# alerts.notify.failures.FailureKind: what a delivery's stored error means.
NOTIFY_FAILURES = {
    "http_status": N_("The receiver answered with an error (HTTP %(status)s)."),
    "unreachable": N_("The receiver could not be reached (refused, timed out or unknown address)."),
    "apprise_failed": N_("The messaging service raised an error."),
    "apprise_refused": N_("The messaging service did not accept the message."),
    "route_removed": N_("The route %(route)s is no longer configured."),
    "channel_error": N_("The channel failed (a fault in offsite: see the server log)."),
    "other": N_("Delivery failed."),
}
CREDIT_GRADES = {
    "A": N_("A (good)"),
    "B": N_("B (general)"),
    "C": N_("C (poor)"),
    "D": N_("D (bad)"),
    "green": N_("Green (honest)"),
    "blue": N_("Blue (good)"),
    "yellow": N_("Yellow (warning)"),
    "red": N_("Red (poor)"),
    "black": N_("Black (dishonest)"),
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
# How the signed checkpoints fail (alerts.checkpoints.CheckpointBreak).
CHECKPOINT_BREAKS = {
    "bad_signature": N_("A signed checkpoint's signature does not hold: it was forged or altered."),
    "disagree": N_("Two signed checkpoints of the same entry disagree: the chain was rewritten."),
}
# rules.spec.RuleKind: what kind of check a rule is.
RULE_KINDS = {
    "threshold": N_("threshold"),
    "window": N_("mean over a window"),
    "rate": N_("rate of change"),
    "absence": N_("no data"),
    "flatline": N_("value unchanged"),
    "composite": N_("combined conditions"),
    "detection": N_("video detection"),
    "flag_share": N_("share of flagged data"),
}
# subjects.models.DeviceRole; a role outside the documented set is shown as it is.
DEVICE_ROLES = {
    "air_station": N_("Air quality station"),
    "wastewater_outlet": N_("Wastewater outlet monitor"),
    "stack": N_("Stack emission monitor"),
    "production_power": N_("Production power meter"),
    "treatment_power": N_("Treatment facility power meter"),
    "tank": N_("Tank monitor"),
    "gas_detector": N_("Combustible gas detector"),
    "camera": N_("Camera"),
}
CREDIT_SCHEMES = {
    "abcd": N_("Credit grade A–D"),
    "jiangsu_env": N_("Jiangsu environmental credit (five colours)"),
}
CREDIT_SOURCES = {
    "create": N_("Created"),
    "edit": N_("Edited"),
    "import": N_("Imported"),
    "migration": N_("On record before the history began"),
}
# subjects.import_report.ImportReason; %(name)s are the error's params.
IMPORT_REASONS = {
    "not_utf8": N_("Not UTF-8 (at byte %(byte)s): save the sheet as “CSV UTF-8”."),
    "empty_file": N_("The file is empty: there is no header row."),
    "malformed_csv": N_("Not a well-formed CSV: %(detail)s"),
    "cell_count": N_("This row has %(cells)s cells; the header has %(header)s."),
    "not_json": N_("Not valid JSON: %(detail)s"),
    "not_a_list": N_("Must be a list of subjects."),
    "row_not_object": N_("Each entry must be an object."),
    "unknown_column": N_("Unknown column; known columns: %(known)s"),
    "duplicate_column": N_("This column appears twice."),
    "missing_column": N_("This required column is missing."),
    "no_rows": N_("There are no rows to import."),
    "required": N_("Required: the cell is empty."),
    "too_long": N_("Too long: at most %(max)s characters."),
    "not_a_number": N_("“%(value)s” is not a number."),
    "invalid_credit_code": N_(
        "“%(value)s” is not a valid unified social credit code (18 characters, GB 32100)."
    ),
    "invalid_credit_grade": N_(
        "“%(value)s” is not a credit grade (A–D, or green/blue/yellow/red/black)."
    ),
    "invalid_credit_scheme": N_("“%(value)s” is not a credit scheme (abcd or jiangsu_env)."),
    "invalid_risk_level": N_(
        "“%(value)s” is not a risk level (low, general, considerable, major)."
    ),
    "invalid_tag": N_("A tag may not contain “;” or “,”."),
    "invalid_attribute": N_("Not a valid attribute (a name of letters, digits, . _ -, a number)."),
    "attributes_not_object": N_("Must be an object of numbers."),
    "not_a_list_cell": N_("Must be a list, or items separated by “;”."),
    "unknown_department": N_("%(department)s is not a known department code."),
    "retired_department": N_(
        "%(department)s is retired and takes no new supervision (successor: %(successor)s)."
    ),
    "department_not_allowed": N_(
        "An officer imports only for their own department %(own)s; %(department)s needs an admin."
    ),
    "duplicate_row": N_("%(code)s is also on row %(row)s."),
    "supervised_by_others": N_(
        "%(code)s is supervised by other departments: ask to join it from its subject file."
    ),
    "rolled_back": N_("The database refused the import; nothing was imported (%(detail)s)."),
    "out_of_range": N_("“%(value)s” is out of the allowed range."),
    "invalid_value": N_("Invalid value: %(detail)s"),
}
ERRORS = {
    "not_found": N_("Not found, or not visible to your department."),
    "forbidden": N_("Not allowed: your role may not do this, or the page is stale (reload it)."),
    "too_large": N_("The upload is too large."),
    "refused": N_("This action is not allowed now."),
    "invalid": N_("The form has an error."),
    "unavailable": N_("This part of offsite is not running here."),
}
# web.pages.subject_forms: errors of the subject file's forms, shown beside their field.
FORM_ERRORS = {
    "give_both_coordinates": N_("Give latitude and longitude together (or leave both empty)."),
    "latitude_range": N_("Latitude “%(value)s” must be between -90 and 90."),
    "longitude_range": N_("Longitude “%(value)s” must be between -180 and 180."),
    "limit_line": N_("Line %(line)s is not “name = number”: %(value)s"),
    "invalid_time": N_("“%(value)s” is not a date and time."),
    "invalid_device_id": N_("“%(value)s” is not a device id (letters, digits, . _ -; at most 64)."),
    "invalid_role": N_("“%(value)s” is not a role (lower case, e.g. gas_detector)."),
    "too_many_tags": N_("At most %(max)s tags."),
}
# One sentence per refusal code of the subject library (subjects.errors.SubjectRefusal);
# %(department)s, %(own)s and %(successor)s are filled in with department names.
SUBJECT_REFUSALS = {
    "subject_not_found": N_("Not found, or not visible to your department."),
    "subject_exists": N_("This subject is in your department's library already."),
    "subject_elsewhere": N_(
        "This subject is in the library under other departments: ask to join it, and an"
        " admin of a supervising department consents."
    ),
    "subject_shared": N_(
        "%(departments)s also supervise this subject: end your department's supervision"
        " instead of deleting it."
    ),
    "concurrent_edit": N_("Someone changed this at the same moment; reload the page and retry."),
    "order_unknown": N_("Unknown sort order."),
    "time_without_offset": N_("The time needs its zone."),
    "since_in_past": N_("The period cannot start in the past."),
    "until_not_after": N_("The end must be later than the start (and than now)."),
    "own_department_only": N_(
        "An officer links only their own department (%(own)s); linking %(department)s needs"
        " a department admin."
    ),
    "department_unknown": N_("%(department)s is not a known department code."),
    "department_retired": N_(
        "%(department)s is retired and takes no new supervision (successor: %(successor)s)."
    ),
    "already_supervises": N_("%(department)s supervises this subject already."),
    "already_requested": N_(
        "%(department)s has asked to join already; the request waits for consent."
    ),
    "request_not_found": N_("No such request to join, or not visible to your department."),
    "decide_needs_admin": N_("Only an admin of a supervising department decides requests."),
    "request_decided": N_("This request has been decided already; reload the page."),
    "request_period_over": N_("The period this request asked for has ended already."),
    "end_own_only": N_(
        "A department ends only its own supervision (%(own)s); %(department)s ends its own."
    ),
    "no_open_period": N_("%(department)s has no open supervision of this subject."),
    "new_device_platform_only": N_(
        "A device bound to no subject yet is bound by the platform admin."
    ),
    "device_not_visible": N_("Device %(device)s is not one your department may bind."),
    "device_not_bound": N_("Device %(device)s is bound to no subject."),
}
# The four-colour risk scale (subjects.models.RiskLevel).
RISK_LEVELS = {
    "low": N_("Low risk"),
    "general": N_("General risk"),
    "considerable": N_("Considerable risk"),
    "major": N_("Major risk"),
}
# What the subject file confirms after an edit (?done=).
SUBJECT_DONE = {
    "created": N_("Subject created: your department supervises it from now."),
    "basic": N_("Basic data saved."),
    "risk": N_("Risk level and tags saved."),
    "limits": N_("Permit limits saved."),
    "credit": N_("Credit grade saved."),
    "linked": N_("The department supervises this subject now."),
    "requested": N_("Request filed: it waits for a supervising department's consent."),
    "unlinked": N_("The supervision period has ended."),
    "approved": N_("Request approved."),
    "refused": N_("Request refused."),
    "bound": N_("Device bound."),
    "unbound": N_("Device unbound."),
}
# subjects.models.ChangeKind, as the subject file's record lists them.
SUBJECT_CHANGES = {
    "subject.created": N_("Subject created"),
    "subject.updated": N_("Subject edited"),
    "subject.deleted": N_("Subject deleted"),
    "subject.department_linked": N_("Department linked"),
    "subject.department_unlinked": N_("Department's supervision ended"),
    "subject.link_requested": N_("Request to join"),
    "subject.link_refused": N_("Request refused"),
    "subject.device_bound": N_("Device bound"),
    "subject.device_unbound": N_("Device unbound"),
}
SUBJECT_FIELDS = {
    "name": N_("Name"),
    "address": N_("Address"),
    "grid": N_("Grid"),
    "industry": N_("Industry"),
    "latitude": N_("Latitude"),
    "longitude": N_("Longitude"),
    "credit_scheme": N_("Credit scheme"),
    "credit_grade": N_("Credit grade"),
    "risk_level": N_("Risk level"),
    "tags": N_("Tags"),
    "attributes": N_("Permit limits"),
}
LINK_REQUEST_STATES = {
    "pending": N_("Waiting for consent"),
    "approved": N_("Approved"),
    "refused": N_("Refused"),
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
    "notify_failure": NOTIFY_FAILURES,
    "credit_grade": CREDIT_GRADES,
    "credit_scheme": CREDIT_SCHEMES,
    "credit_source": CREDIT_SOURCES,
    "import_reason": IMPORT_REASONS,
    "form_error": FORM_ERRORS,
    "subject_done": SUBJECT_DONE,
    "subject_change": SUBJECT_CHANGES,
    "subject_field": SUBJECT_FIELDS,
    "link_request_state": LINK_REQUEST_STATES,
    "error": ERRORS,
    "refusal": REFUSALS,
    "subject_refusal": SUBJECT_REFUSALS,
    "risk_level": RISK_LEVELS,
    "audit_break": AUDIT_BREAKS,
    "checkpoint_break": CHECKPOINT_BREAKS,
    "rule_kind": RULE_KINDS,
    "device_role": DEVICE_ROLES,
}


def labeller(gettext: Callable[[str], str]) -> Callable[[str, str | None], str]:
    """`label('state', 'open')` -> '待处理'; an unknown code is shown as it is."""

    def label(table: str, code: str | None) -> str:
        if code is None:
            return ""
        msg = TABLES[table].get(code)
        return gettext(msg) if msg is not None else code

    return label


def formatter(gettext: Callable[[str], str]) -> Callable[[str, str, dict[str, object]], str]:
    """`describe('import_reason', 'cell_count', {'cells': 2, 'header': 5})`: the label with
    the values it names; a value the label does not name is ignored, a missing one shown
    as its name, so a report never fails to render."""
    label = labeller(gettext)

    def describe(table: str, code: str, params: dict[str, object]) -> str:
        return label(table, code) % _Lenient(params)

    return describe


class _Lenient(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return key
