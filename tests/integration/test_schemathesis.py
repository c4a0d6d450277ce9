"""Schemathesis over the whole OpenAPI spec: no generated request, valid or not, gets a server error.

Every answer must also be documented: its status code, its content type, and a body that matches
the operation's schema (the response models of :mod:`detector.api.schemas` and the problems of
:mod:`detector.api.problems`).

The app runs on a migrated SQLite store seeded with alerts, incidents, a waiting run, a suppression
and a model version, acts on keys in a SoftHSM2 token, and signs its audit ledger, so every route
reaches its handler. Every request carries an admin token, so authorization never hides a handler
bug; a second pass repeats each case as an analyst, where 403 is an answer and 5xx still a bug.
Nothing is excluded: no route calls Slack or AWS (no Slack secret, so the interactions endpoint is
not mounted, and the only key backend is the token).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
import test_api as api
from api_support import Env, make_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode
from schemathesis.schemas import BaseSchema
from softhsm import add_sample_keys, make_token

from detector.adapters.keys.pkcs11_backend import Pkcs11Backend
from detector.adapters.store import Store
from detector.api import create_app
from detector.config import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEEDED_KEY = "prod/payments:v1"
# answers are never server errors, use documented status codes and content types, and match their schemas
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEEDS: dict[str, str] = {"key_id": SEEDED_KEY}  # path parameter -> an id that exists (filled by ``env``)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The API over SQLite and a SoftHSM2 token: incidents, a waiting run, a suppression, a model, a user."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    token = make_token(tmp / "softhsm", label="kw-fuzz", pin="kw-fuzz-pin")
    keys = add_sample_keys(token)
    backend = Pkcs11Backend(token.module, token.label, token.pin, key_map={SEEDED_KEY: keys.aes})
    e = make_env(f"sqlite:///{tmp / 'store.db'}", tmp, backends={"pkcs11": backend})
    for seed in (api._incident, api._run, api._suppression, api._model, api._incident, api._existing_user):
        SEEDS.update(seed(e))
    yield e
    e.client.close()
    e.store.close()


@pytest.fixture(scope="module")
def api_schema(env: Env) -> BaseSchema:
    """The spec the app serves, called in-process over ASGI."""
    return schemathesis.openapi.from_asgi("/v1/openapi.json", env.client.app)


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """Every documented operation (read from an app that is never called) in each generation mode.

    Negative data needs an input to break, so operations without parameters or body run positive only.
    """
    spec = create_app(Settings(), Store("sqlite://"), backends={}).openapi()
    return [
        (method.upper(), path, mode)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        for mode in GenerationMode
        if mode is GenerationMode.POSITIVE or op.get("parameters") or op.get("requestBody")
    ]


# schemathesis.pytest.from_fixture would be the natural fit, but it breaks on pytest 9 (it reads
# the removed ``Function._nodeid``), so operations are parametrized here and cases drawn in the test.
@pytest.mark.parametrize(("method", "path", "mode"), _cases(), ids=lambda v: str(v))
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_no_generated_request_gets_a_server_error(
    api_schema: BaseSchema, env: Env, method: str, path: str, mode: GenerationMode, data: st.DataObject
) -> None:
    operation = api_schema[path][method]
    # half the cases use seeded ids for every id in the path, so handlers get past their 404
    known = {name: SEEDS[name] for name in SEEDS if f"{{{name}}}" in path}
    strategy = operation.as_strategy(mode, path_parameters=known or None)
    case = data.draw(st.one_of(operation.as_strategy(mode), strategy))
    for who in ("ada", "ann"):
        # negative mode may break the Authorization header too: always send a valid token
        case.headers = {**(case.headers or {}), **env.auth(who)}
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code not in {401, 429}, response.text  # authentication hid the handler
        assert who != "ada" or response.status_code != 403, response.text


@pytest.mark.parametrize(
    "path", ["/v1/alerts", "/v1/incidents", "/v1/suppressions", "/v1/verdicts", "/v1/approvals"]
)
def test_an_offset_past_any_database_integer_is_a_422(env: Env, path: str) -> None:
    # found by the test above: SQLite's OFFSET is a signed 64-bit integer, and overflowing it was a 500
    response = env.client.get(path, params={"offset": 2**63}, headers=env.auth("ada"))
    assert response.status_code == 422, response.text
