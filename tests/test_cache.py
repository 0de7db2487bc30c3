import numpy as np

from anoclust.features.cache import FeatureCache, file_digest


def test_round_trip_and_key_depends_on_model(tmp_path):
    cache = FeatureCache(tmp_path)
    a = np.arange(12, dtype=np.float16).reshape(3, 4)
    k1, k2 = cache.key("abc", "model-1"), cache.key("abc", "model-2")
    assert k1 != k2
    cache.put(k1, a)
    assert np.array_equal(cache.get(k1), a)
    assert cache.get(k2) is None


def test_corrupted_and_truncated_entries_are_detected(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache.key("abc", "m")
    cache.put(key, np.ones((50, 8), dtype=np.float16))
    path = next(tmp_path.rglob("*.bag"))
    blob = bytearray(path.read_bytes())
    blob[-3] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert cache.get(key) is None
    path.write_bytes(bytes(blob[:40]))
    assert cache.get(key) is None
    assert len(cache.corrupt) == 2


def test_no_temporary_files_left(tmp_path):
    cache = FeatureCache(tmp_path)
    for i in range(3):
        cache.put(cache.key(str(i), "m"), np.zeros(4))
    assert sorted(p.suffix for p in tmp_path.rglob("*") if p.is_file()) == [".bag"] * 3


def test_disabled_cache_stores_nothing():
    cache = FeatureCache(None)
    cache.put("k", np.zeros(2))
    assert cache.get("k") is None


def test_file_digest(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"abc")
    assert file_digest(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
