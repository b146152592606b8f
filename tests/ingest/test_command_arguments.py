"""Commands refuse bad arguments with one clean line, never a traceback or a spin."""

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from compliance.models import ErasureLedger
from compliance.services.erasure import erasures_reapply
from tests.factories import StudentFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "args",
    [
        ["--batch-size", "0"],
        ["--batch-size", "2000000"],
        ["--metrics-port", "70000"],
        ["--max-messages", "0"],
        ["--idle-exit", "-1"],
    ],
)
def test_consume_events_refuses_out_of_range_options(args):
    with pytest.raises(CommandError):
        call_command("consume_events", *args)


def test_produce_events_refuses_an_absurd_number_of_students():
    with pytest.raises(CommandError, match="--students at most"):
        call_command("produce_events", "--count", "1", "--students", str(10**9))


def test_gdpr_export_to_an_unwritable_path_is_a_command_error():
    StudentFactory(student_id="s-exp")
    with pytest.raises(CommandError, match="cannot write"):
        call_command("gdpr_export", "s-exp", "--output", "/nonexistent-dir/x.json")


def test_a_corrupt_ledger_file_names_its_line_and_changes_nothing(tmp_path):
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text(
        '{"student_hash": "ab", "erased_at": "2026-11-20T10:00:00+00:00"}\nnot json\n'
    )
    with override_settings(ERASURE_LEDGER_FILE=ledger):
        with pytest.raises(CommandError, match="line 2"):
            call_command("gdpr_reapply_erasures")
        with pytest.raises(ValueError, match="line 2"):
            erasures_reapply()
    assert not ErasureLedger.objects.exists()
