"""What officers read comes from the catalogs: every refusal code, rule summary, credit grade
and template text has Chinese; nothing English is left in the templates' visible text."""

from __future__ import annotations

import re
from pathlib import Path

from alerts.errors import Refusal
from subjects.models import CreditGrade, EnvColour
from web import labels
from web.i18n import translations

ROOT = Path(__file__).parents[2]
zh = translations("zh_CN").gettext


def _chinese(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def test_every_refusal_code_has_a_chinese_sentence() -> None:
    codes = {r.value for r in Refusal} | set(labels.WEB_REFUSALS)
    assert set(labels.REFUSALS) == codes  # none missing, none left over from a removed code
    untranslated = [c for c, msg in labels.REFUSALS.items() if not _chinese(zh(msg))]
    assert untranslated == []


def test_every_subject_refusal_code_has_a_chinese_sentence() -> None:
    from subjects.errors import SubjectRefusal

    assert set(labels.SUBJECT_REFUSALS) == {r.value for r in SubjectRefusal}
    untranslated = [c for c, msg in labels.SUBJECT_REFUSALS.items() if not _chinese(zh(msg))]
    assert untranslated == []
    from subjects.models import RiskLevel

    assert set(labels.RISK_LEVELS) == {r.value for r in RiskLevel}
    assert [r for r, msg in labels.RISK_LEVELS.items() if not _chinese(zh(msg))] == []


def test_every_credit_grade_of_both_schemes_has_a_label() -> None:
    from subjects.models import CreditScheme

    grades = [g.value for g in CreditGrade] + [c.value for c in EnvColour]
    assert [g for g in grades if not _chinese(zh(labels.CREDIT_GRADES.get(g, g)))] == []
    schemes = [s.value for s in CreditScheme]
    assert [s for s in schemes if not _chinese(zh(labels.CREDIT_SCHEMES.get(s, s)))] == []


def test_every_shipped_rule_has_a_summary_in_chinese() -> None:
    from rules.loader import load_directory
    from subjects.departments import load_departments
    from web.rule_titles import RULE_SUMMARIES

    codes = [d["code"] for d in load_departments()]
    shipped = load_directory(ROOT / "deploy/rules", codes).rules
    assert [r.id for r in shipped if not r.description.strip()] == []
    assert [r.id for r in shipped if not _chinese(zh(r.description))] == []
    assert set(RULE_SUMMARIES) >= {r.description for r in shipped}


def _visible_text(html: str) -> list[str]:
    """Template text a browser shows, with Jinja expressions, scripts and tags taken out."""
    html = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", html, flags=re.S)
    html = re.sub(r"<script.*?</script>|<style.*?</style>", " ", html, flags=re.S)
    html = re.sub(r"<[^>]*>", "\n", html, flags=re.S)
    return [t.strip() for t in html.split("\n") if t.strip()]


# Words that are the same in both languages: the product's name, the language switch's own
# name for English, a hash algorithm, and an example device role (a code officers type).
ALLOWED = {"offsite  ·", "English", "SHA-256", "&nbsp;"}
# Examples of codes officers type (a device role, a permit attribute), not prose.
ALLOWED_HINTS = {"gas_detector", "permit.cod_mg_l = 50"}


def test_no_english_left_in_the_templates() -> None:
    found = []
    for template in sorted((ROOT / "web/templates").glob("*.html")):
        html = template.read_text()
        found += [
            f"{template.name}: {t}"
            for t in _visible_text(html)
            if re.search(r"[A-Za-z]{2,}", t) and t not in ALLOWED
        ]
        for m in re.finditer(r'(?:placeholder|title|alt|aria-label)="([^"{]+)"', html):
            if re.search(r"[A-Za-z]{2,}", m.group(1)) and m.group(1) not in ALLOWED_HINTS:
                found.append(f"{template.name}: {m.group(0)}")
    assert found == []


def test_every_audit_break_has_a_chinese_sentence() -> None:
    from alerts.audit import Break

    assert set(labels.AUDIT_BREAKS) == {b.value for b in Break}
    assert [b for b, msg in labels.AUDIT_BREAKS.items() if not _chinese(zh(msg))] == []


def test_every_notification_event_has_a_chinese_label() -> None:
    from alerts.records import NotifyEvent

    assert set(labels.NOTIFY_EVENTS) == {e.value for e in NotifyEvent}
    assert [e for e, msg in labels.NOTIFY_EVENTS.items() if not _chinese(zh(msg))] == []


def test_every_delivery_failure_and_checkpoint_break_has_a_chinese_sentence() -> None:
    from alerts.checkpoints import CheckpointBreak
    from alerts.notify.failures import FailureKind

    assert set(labels.NOTIFY_FAILURES) == {k.value for k in FailureKind}
    assert [k for k, msg in labels.NOTIFY_FAILURES.items() if not _chinese(zh(msg))] == []
    assert set(labels.CHECKPOINT_BREAKS) == {b.value for b in CheckpointBreak}
    assert [b for b, msg in labels.CHECKPOINT_BREAKS.items() if not _chinese(zh(msg))] == []


def test_every_documented_device_role_and_rule_kind_has_a_chinese_label() -> None:
    from rules.spec import RuleKind
    from subjects.models import DeviceRole

    assert set(labels.DEVICE_ROLES) == {r.value for r in DeviceRole}
    assert [r for r, msg in labels.DEVICE_ROLES.items() if not _chinese(zh(msg))] == []
    assert set(labels.RULE_KINDS) == {k.value for k in RuleKind}
    assert [k for k, msg in labels.RULE_KINDS.items() if not _chinese(zh(msg))] == []
