import pytest

from evershell.core.ids import id_timestamp_ms, is_id, new_id


def test_ids_carry_their_prefix_and_sort_by_creation():
    ids = [new_id("org") for _ in range(500)]
    assert all(is_id(i, "org") for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 500


def test_id_encodes_its_creation_time():
    import time
    before = int(time.time() * 1000)
    value = new_id("user")
    assert before - 1 <= id_timestamp_ms(value) <= int(time.time() * 1000) + 1


def test_unknown_prefix_is_refused():
    with pytest.raises(ValueError):
        new_id("bogus")


def test_is_id_rejects_other_prefixes_and_garbage():
    assert not is_id(new_id("org"), "user")
    assert not is_id("org_short", "org")
    assert not is_id("org_01M846ENVJJHPG3BN9VJRDHEXI", "org")  # I is not Crockford
