"""The plumbing audits through the sink compliance registers; with none, it fails loudly."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from compliance.services.audit import audit_log_write, student_ref_for_missing
from mastery_project import audit


def test_the_compliance_app_registers_the_audit_log_as_the_sink():
    sink = audit.audit_sink()
    assert sink.write is audit_log_write
    assert sink.ref_for_missing is student_ref_for_missing


def test_without_a_sink_auditing_refuses_rather_than_skipping(monkeypatch):
    monkeypatch.setattr(audit, "_registered", [])
    with pytest.raises(ImproperlyConfigured, match="no audit sink"):
        audit.audit_sink()
