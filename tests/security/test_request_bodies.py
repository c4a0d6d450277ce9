"""JSON request bodies: NULs are refused in any encoding, and a body that is not UTF-8 is a 422.

A NUL hidden in a UTF-16 or UTF-32 body slipped past a guard that looked for the UTF-8 escape
``\\u0000`` (the JSON parser decodes those encodings too): NULs were stored on SQLite and gave
500 on PostgreSQL. A body of invalid UTF-8 gave a 500 as well.
"""

from __future__ import annotations

import json

import pytest
from api_support import Env

from detector.domain.incidents import incident_id_for

pytestmark = pytest.mark.integration
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]


def _post_note(env: Env, body: bytes) -> tuple[int, str, str]:
    incident = incident_id_for(env.alert())
    response = env.client.post(f"/v1/incidents/{incident}/notes", content=body, headers={
        **env.auth("ann"), "Content-Type": "application/json"})  # fmt: skip
    stored = env.store.get_incident(incident)
    notes = " ".join(str(entry) for entry in stored.timeline) if stored is not None else ""
    return response.status_code, response.text, notes


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_nul_in_a_body_of_another_encoding_is_refused(env: Env, encoding: str) -> None:
    status, text, notes = _post_note(env, json.dumps({"text": "a\u0000b"}).encode(encoding))
    assert status == 422 and "UTF-8" in text
    assert "a\x00b" not in notes and "\\x00" not in notes


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_any_body_not_in_utf8_is_refused(env: Env, encoding: str) -> None:
    status, text, _ = _post_note(env, json.dumps({"text": "looked at it"}).encode(encoding))
    assert status == 422 and "UTF-8" in text


@pytest.mark.parametrize(
    "body",
    [
        b'{"text": "caf\xe9"}',
        b'{"text": "\xff\xfe"}',
        b"\xef\xbb\xbf" + b'{"text": "bom"}',
        b'{"text": "\xed\xa0\x80"}',
    ],
    ids=["latin-1", "invalid-bytes", "byte-order-mark", "encoded-surrogate"],
)
def test_invalid_utf8_is_a_422_never_a_500(env: Env, body: bytes) -> None:
    status, text, _ = _post_note(env, body)
    assert status == 422, text


def test_utf8_bodies_still_pass(env: Env) -> None:
    status, text, notes = _post_note(env, json.dumps({"text": "café ✓"}, ensure_ascii=False).encode())
    assert status == 200, text
    assert "café ✓" in notes
