import re
from pathlib import Path

import pytest

from compliance.models import AUDIT_ACTIONS, AuditLog
from compliance.services.audit import audit_log_write
from compliance.services.erasure import student_erase
from compliance.services.pseudonyms import student_hash
from tests.factories import StudentFactory

ROOT = Path(__file__).resolve().parents[2]
# Audit actions are dotted names ("mastery.query"); argparse's action="store_true" is not.
WRITTEN = re.compile(r'(?:\baction=|audit_(?:list|view)_action = )"([a-z]+\.[a-z._]+)"')


def test_the_admin_action_filter_offers_every_action_the_code_audits():
    written = set()
    for app in ("mastery", "ingest", "compliance", "analytics", "mastery_project"):
        for source in (ROOT / app).rglob("*.py"):
            written |= set(WRITTEN.findall(source.read_text()))
    assert written, "the pattern still finds the audit calls"
    assert written <= set(AUDIT_ACTIONS), written - set(AUDIT_ACTIONS)


def test_erasure_rewrites_only_whole_path_segments_of_audited_resources(db):
    StudentFactory(student_id="v1")
    audit_log_write(request=None, action="student.retrieve", student_refs=["v1"],
                    resource="/api/v1/students/v1/")  # fmt: skip
    student_erase(student_id="v1", actor=None)
    entry = AuditLog.objects.filter(action="student.retrieve").get()
    assert entry.resource == f"/api/v1/students/erased:{student_hash('v1')}/"


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("analytics.history", "/api/v1/analytics/history/{}"),
        ("gdpr.export", "/api/v1/compliance/student/{}/export"),
    ],
)
def test_erasure_rewrites_the_student_in_every_path_that_names_it(db, action, resource):
    StudentFactory(student_id="s-9")
    audit_log_write(request=None, action=action, student_refs=["s-9"],
                    resource=resource.format("s-9"))  # fmt: skip
    student_erase(student_id="s-9", actor=None)
    entry = AuditLog.objects.filter(action=action).get()
    assert entry.resource == resource.format(f"erased:{student_hash('s-9')}")
