"""Which catalogue a list is matched in when neither the command nor the mapping names
one: the default service's adapter if it has a catalogue, else the only one stored."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from gateway.directory_import.apply import catalogue_provider
from gateway.models import Base, ProviderFacility

pytestmark = pytest.mark.directory


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def _facility(session, provider, facility_id):
    session.add(ProviderFacility(provider=provider, facility_id=facility_id,
                                 name=f"СИЗО-{facility_id}", region="Москва"))
    session.flush()


def _settings(default_provider, service_adapters=""):
    from gateway.config import Settings
    return Settings(default_provider=default_provider, service_adapters=service_adapters)


def test_the_default_services_adapter_when_it_has_a_catalogue(session):
    _facility(session, "http", "1")
    _facility(session, "post", "2")
    assert catalogue_provider(session, _settings("post")) == "post"
    assert catalogue_provider(session, _settings("http")) == "http"


def test_the_only_stored_catalogue_when_the_default_is_the_desk(session):
    # A gateway that carries letters by hand (default: desk) but has synced one service's
    # catalogue matches its lists against that catalogue, not an empty "http" one.
    _facility(session, "post", "2")
    assert catalogue_provider(session, _settings("desk")) == "post"


def test_http_when_nothing_else_decides(session):
    assert catalogue_provider(session, _settings("desk")) == "http"
    _facility(session, "http", "1")
    _facility(session, "post", "2")
    assert catalogue_provider(session, _settings("desk")) == "http"
    assert catalogue_provider(session, None) == "http"
