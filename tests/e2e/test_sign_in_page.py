"""A person opening Evershell in Chromium lands on a readable sign-in page."""

from tests.e2e.pages import SignInPage


def test_visiting_the_console_leads_to_sign_in(page, live_server):
    page.goto(live_server.url + "/")
    assert page.url.startswith(live_server.url + "/sign-in")
    sign_in = SignInPage(page, live_server.url)
    assert sign_in.heading.inner_text() == "Sign in to Evershell"
    assert sign_in.continue_button.first.is_visible()
    assert page.title().endswith("Evershell")


def test_sign_in_page_loads_its_assets_from_our_server(page, live_server):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    SignInPage(page, live_server.url).open()
    page.wait_for_load_state("networkidle")
    assert requested and all(url.startswith(live_server.url) for url in requested)
    assert not failed
    # The stylesheet applied: the page is not unstyled browser defaults.
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != '"Times New Roman"'
    assert page.evaluate("typeof htmx") == "object"


def test_unknown_console_page_is_a_friendly_404(page, live_server):
    response = page.goto(live_server.url + "/definitely-not-here")
    assert response.status == 404
    assert "not found" in page.content().lower()
