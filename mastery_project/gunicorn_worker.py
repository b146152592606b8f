"""gunicorn's worker, answering in the API's envelope what gunicorn refuses by itself.

Before Django sees a request, gunicorn refuses a request line over `limit_request_line`
(414), headers over `limit_request_fields` or `limit_request_field_size` (431) and malformed
HTTP (400), with an HTML page of its own. gunicorn writes every such page through
`gunicorn.util.write_error`; this worker replaces that function, in its own process, with
one that writes the envelope.
"""

import json

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from mastery_project.envelope import status_envelope


def write_envelope_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """`util.write_error`'s signature; `mesg` is dropped, as it quotes the client's input."""
    body = json.dumps(status_envelope(status_int)).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


class EnvelopeThreadWorker(ThreadWorker):
    """gunicorn's threaded worker (what `threads > 1` selects) with envelope error pages."""

    def init_process(self) -> None:
        util.write_error = write_envelope_error
        super().init_process()
