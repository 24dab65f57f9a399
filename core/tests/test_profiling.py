from django.test import RequestFactory

from core.profiling import silk_should_intercept


def test_silk_records_api_and_admin_requests_but_not_static_files_or_scrapes():
    get = RequestFactory().get
    assert silk_should_intercept(get("/api/v1/signup"))
    assert silk_should_intercept(get("/admin/"))
    assert not silk_should_intercept(get("/static/admin/css/base.css"))
    assert not silk_should_intercept(get("/metrics"))
