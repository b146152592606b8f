"""The API's JSON parser: orjson, bounded in size and depth, strict about NaN/Infinity."""

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    """Refuses what the standard library would accept or choke on: NaN and Infinity
    literals (not JSON), nesting deeper than orjson's 1024 levels (instead of a
    RecursionError), and bodies over DATA_UPLOAD_MAX_MEMORY_SIZE (refused as Django refuses
    them when it reads the body itself: 413 in the envelope)."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise RequestDataTooBig(f"The body is larger than {limit} bytes.")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
