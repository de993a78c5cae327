"""GET /v1/capabilities says how this host enforces each limit."""

from evershell.sandbox import cgroups


def test_capabilities_name_the_mechanism_of_each_limit(client, owner):
    limits = {item["name"]: item["enforced_by"] for item in
              client.get("/v1/capabilities", headers=owner.headers).get_json()["limits"]}
    version = cgroups.detect().version
    assert f"cgroup v{version}" in limits["memory_mb"]
    assert "pids" in limits["processes"] and "RLIMIT_NPROC" in limits["processes"]
    assert "RLIMIT_FSIZE" in limits["disk_mb"]
    assert set(limits) == {"cpu_seconds", "wall_seconds", "memory_mb", "processes",
                           "disk_mb", "max_output_bytes"}
