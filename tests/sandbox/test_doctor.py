"""The host report names what enforces each limit, and what is missing, by package."""

from __future__ import annotations

import pytest

from evershell.sandbox import HostNotReady, doctor


def test_report_names_a_mechanism_for_every_limit():
    items = {item: (detail, ok) for item, detail, ok in doctor.report()}
    for limit in ("memory", "cpu", "wall", "processes", "disk", "output", "cancel"):
        assert items[limit][0]
    assert "RLIMIT_FSIZE" in items["disk"][0] and "pids.max" in items["processes"][0]


def test_missing_bubblewrap_names_the_package(monkeypatch):
    monkeypatch.setattr(doctor.shutil, "which", lambda name: None)
    with pytest.raises(HostNotReady, match="bubblewrap"):
        doctor.check_host()


def test_an_unsearchable_sandbox_root_is_named(tmp_path):
    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    with pytest.raises(HostNotReady, match="not searchable"):
        doctor.check_host(hidden / "sandboxes")
