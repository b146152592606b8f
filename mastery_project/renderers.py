"""The API's JSON renderer: DRF's, with the encoding done by orjson (in C); and its content
negotiation, with DRF's answer to the common case given without parsing.

The document is the same as `rest_framework.renderers.JSONRenderer` writes (compact, UTF-8,
U+2028 and U+2029 escaped); anything orjson does not write as DRF does (datetimes, decimals,
lazy strings) goes through DRF's own encoder; indented output (`; indent=N`), and what
orjson cannot write at all (integers over 64 bits), is DRF's.
One difference: a NaN or infinity becomes null, where DRF's strict mode fails the request.
"""

import orjson
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class OrjsonRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=self.encoder_class().default, option=_OPTIONS)
        except orjson.JSONEncodeError:  # what orjson cannot write (an int over 64 bits)
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in body or b"\xe2\x80\xa9" in body:
            body = body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return body


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, answered at once for what nearly every API client sends:
    no Accept header, `*/*` or `application/json`, with no `?format=`. The answer is the
    one DRF's would give (the first renderer, when it is the JSON one); anything else goes
    through DRF's."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT")
        first = renderers[0] if renderers else None
        if (
            accept in _PLAIN_ACCEPT
            and first is not None
            and first.media_type == "application/json"
            and not format_suffix
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)


_PLAIN_ACCEPT = frozenset({None, "*/*", "application/json"})
