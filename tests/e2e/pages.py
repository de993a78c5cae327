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
