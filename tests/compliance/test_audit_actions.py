import re
from pathlib import Path

from compliance.models import AUDIT_ACTIONS

ROOT = Path(__file__).resolve().parents[2]
# Audit actions are dotted names ("mastery.query"); argparse's action="store_true" is not.
WRITTEN = re.compile(r'(?:\baction=|audit_(?:list|view)_action = )"([a-z]+\.[a-z._]+)"')


def test_the_admin_action_filter_offers_every_action_the_code_audits():
    written = set()
    for app in ("mastery", "ingest", "compliance"):
        for source in (ROOT / app).rglob("*.py"):
            written |= set(WRITTEN.findall(source.read_text()))
    assert written, "the pattern still finds the audit calls"
    assert written <= set(AUDIT_ACTIONS), written - set(AUDIT_ACTIONS)
