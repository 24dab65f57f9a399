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


@pytest.fixture
def broker_down(monkeypatch):
    import dramatiq

    from core.broker import fast_fail_redis

    monkeypatch.setattr(dramatiq.get_broker(), "client", fast_fail_redis("redis://127.0.0.1:1/0"))


def test_live_answers_200(api):
    response = api.get("/api/v1/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_ready_ok_when_both_parts_answer(api):
    response = api.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_ready_is_200_but_degraded_while_the_broker_is_down(api, broker_down):
    response = api.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "error"}
    assert api.get("/api/v1/health/live").status_code == 200


def test_ready_is_503_without_the_database(api, monkeypatch):
    from core import health

    monkeypatch.setattr(health, "check_database", lambda: False)
    response = api.get("/api/v1/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "error"


def test_a_broker_outage_is_logged_once_per_change_without_a_traceback(api, monkeypatch, caplog):
    import dramatiq

    from core import health
    from core.broker import fast_fail_redis

    monkeypatch.setattr(health, "states", health.PartStates())
    broker = dramatiq.get_broker()
    with monkeypatch.context() as down:
        down.setattr(broker, "client", fast_fail_redis("redis://127.0.0.1:1/0"))
        for _ in range(5):
            api.get("/api/v1/health/ready")
            api.get("/api/v1/health")
    for _ in range(3):
        api.get("/api/v1/health/ready")  # the broker is back

    lines = [r for r in caplog.records if r.name == "core.health"]
    assert [r.getMessage().split(" error=")[0] for r in lines] == [
        "health part=broker state=error",
        "health part=broker state=ok (recovered)",
    ]
    assert all(r.exc_info is None for r in lines)
