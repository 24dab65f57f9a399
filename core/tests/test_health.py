import pytest

pytestmark = pytest.mark.django_db


def test_health_ok_when_database_and_broker_answer(api):
    response = api.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_503_names_the_broker_when_redis_is_unreachable(api, monkeypatch):
    import dramatiq

    from core.broker import fast_fail_redis

    monkeypatch.setattr(dramatiq.get_broker(), "client", fast_fail_redis("redis://127.0.0.1:1/0"))
    response = api.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "ok", "broker": "error"}
