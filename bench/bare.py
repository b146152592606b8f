"""The API benchmark's baseline: the least a Django view can do to answer `mastery/query`.

It reads the same rows (the student's records with their topics' slugs) under the same
server, settings and middleware, and writes them as JSON; no authentication, permission,
validation, audit entry or rate limit. What `POST /api/v1/mastery/query` adds on top is
the price of those.
"""

import orjson
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from mastery.models import MasteryRecord


@csrf_exempt
@require_POST
def bare_mastery(request: HttpRequest) -> HttpResponse:
    student_id = orjson.loads(request.body)["student_id"]
    rows = MasteryRecord.objects.filter(student__student_id=student_id).values_list(
        "topic__slug", "mastery", "level", "completion", "quiz", "quality", "consistency",
        "updated_at",
    )  # fmt: skip
    topics = [
        {
            "topic": slug, "mastery": mastery, "level": level,
            "components": {
                "completion": completion, "quiz": quiz, "quality": quality,
                "consistency": consistency,
            },
            "updated_at": updated_at,
        }
        for slug, mastery, level, completion, quiz, quality, consistency, updated_at in rows
    ]  # fmt: skip
    body = {"student_id": student_id, "topics": topics}
    return HttpResponse(orjson.dumps(body), content_type="application/json")
