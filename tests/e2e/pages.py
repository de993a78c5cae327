"""Page objects: what a person sees and does, named as they would name it."""

from __future__ import annotations


class SignInPage:
    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self) -> SignInPage:
        self.page.goto(f"{self.base_url}/sign-in")
        return self

    @property
    def heading(self):
        return self.page.get_by_role("heading", level=1)

    @property
    def continue_button(self):
        return self.page.get_by_role("button", name="Continue with") \
            .or_(self.page.get_by_role("link", name="Continue with"))


class LocalAuthPage:
    """The local AuthKit-protocol server's "Sign in as" page."""

    def __init__(self, page) -> None:
        self.page = page

    def sign_in_as(self, email: str) -> None:
        self.page.get_by_label("Email").fill(email)
        self.page.get_by_role("button", name="Continue").click()


class Console:
    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def sign_in(self, email: str, path: str = "/") -> Console:
        self.page.goto(self.base_url + path)
        SignInPage(self.page, self.base_url).continue_button.first.click()
        LocalAuthPage(self.page).sign_in_as(email)
        self.page.wait_for_url(f"{self.base_url}{path}*")
        return self

    @property
    def nav_labels(self) -> list[str]:
        return self.page.get_by_role("navigation", name="Main").get_by_role(
            "link").all_inner_texts()

    def sign_out(self) -> None:
        self.page.get_by_role("link", name="Sign out").click()


class ApiKeysPage:
    def __init__(self, page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self) -> ApiKeysPage:
        self.page.goto(self.base_url + "/settings/api-keys")
        return self

    def create(self, name: str, template: str) -> str:
        self.page.get_by_label("Name").fill(name)
        self.page.get_by_label("Permissions").select_option(template)
        self.page.get_by_role("button", name="Create key").click()
        dialog = self.page.get_by_role("dialog")
        dialog.wait_for()
        return dialog.locator("code").inner_text().strip()

    def revoke(self, name: str) -> None:
        self.page.once("dialog", lambda d: d.accept())
        row = self.page.get_by_role("row").filter(has_text=name)
        row.get_by_role("button", name="Revoke").click()
        row.get_by_text("revoked").wait_for()
