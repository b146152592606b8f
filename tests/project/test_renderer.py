"""The API's orjson renderer writes what DRF's JSONRenderer writes, for any document, and its
content negotiation chooses what DRF's chooses."""

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.utils.functional import lazy
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.exceptions import ErrorDetail, NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

from mastery_project.renderers import JsonFirstNegotiation, OrjsonRenderer

lazy_text = lazy(str, str)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.sampled_from(["\u2028", "a\u2029b", "é", "\x00", '"\\']),
    st.datetimes(timezones=st.sampled_from([UTC, None])),
    st.dates(),
    st.times(),
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.text().map(ErrorDetail),
    st.text().map(lazy_text),
)
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(lambda items: ReturnList(items, serializer=None)),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.dictionaries(st.integers(), inner, max_size=3),
    ),
    max_leaves=20,
)


@given(document=st.lists(documents, max_size=3))
def test_the_same_document_as_drf_writes(document):
    ours = OrjsonRenderer().render(document)
    theirs = JSONRenderer().render(document)
    assert json.loads(ours) == json.loads(theirs)
    assert b"\xe2\x80\xa8" not in ours
    assert b"\xe2\x80\xa9" not in ours


def test_a_serializers_return_dict_and_the_empty_body():
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    document = ReturnDict({"when": when}, serializer=None)
    assert OrjsonRenderer().render(document) == JSONRenderer().render(document)
    assert OrjsonRenderer().render(None) == b""


def test_indentation_asked_for_is_drfs():
    document = {"a": [1, 2], "b": timedelta(seconds=90), "c": date(2026, 1, 2), "d": time(1, 2)}
    indented = "application/json; indent=2"
    assert OrjsonRenderer().render(document, indented) == JSONRenderer().render(document, indented)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
@pytest.mark.parametrize(
    "renderers",
    [[OrjsonRenderer()], [OrjsonRenderer(), BrowsableAPIRenderer()]],
    ids=["json", "json-and-browsable"],
)
def test_the_common_accept_headers_get_drfs_choice(rf, accept, renderers):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(rf.get("/api/v1/students", **headers))
    ours = JsonFirstNegotiation().select_renderer(request, renderers)
    assert ours == DefaultContentNegotiation().select_renderer(request, renderers)


@pytest.mark.parametrize("accept", ["text/html", "application/json; indent=2", "text/plain"])
def test_other_accept_headers_go_through_drfs(rf, accept):
    renderers = [OrjsonRenderer(), BrowsableAPIRenderer()]
    request = Request(rf.get("/api/v1/students", HTTP_ACCEPT=accept))
    try:
        expected = DefaultContentNegotiation().select_renderer(request, renderers)
    except NotAcceptable:
        with pytest.raises(NotAcceptable):
            JsonFirstNegotiation().select_renderer(request, renderers)
    else:
        assert JsonFirstNegotiation().select_renderer(request, renderers) == expected
    only_json = [OrjsonRenderer()]
    with pytest.raises(NotAcceptable):
        JsonFirstNegotiation().select_renderer(
            Request(rf.get("/", HTTP_ACCEPT="text/html")), only_json
        )
