"""The API's page-number pagination, strict about `?page=`."""

import re

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination

# One positive decimal integer, ASCII digits, no sign, no leading zero.
_PAGE = re.compile(r"[1-9][0-9]*")
PAGE_RULE = "A page is one positive integer."


class StrictPageNumberPagination(PageNumberPagination):
    """DRF's pagination reads `?page=` loosely: empty is page 1, a repeated one keeps the
    last, and int() accepts " 7", "1_0" and non-ASCII digits. Here a page that is not one
    positive integer is 422 (`validation_error`, details under `page`); a page past the last
    stays DRF's 404. The schema states both."""

    last_page_strings = ()

    def get_page_number(self, request, paginator) -> str | int:
        values = request.query_params.getlist(self.page_query_param)
        if not values:
            return 1
        if len(values) > 1 or not _PAGE.fullmatch(values[0]):
            raise ValidationError({self.page_query_param: [PAGE_RULE]})
        return values[0]

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": (
                    "A page number, from 1 (the default). Not one positive integer (empty, "
                    "repeated, signed, zero): 422. Past the last page: 404."
                ),
                "schema": {"type": "integer", "minimum": 1},
            }
        ]
