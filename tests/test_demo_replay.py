"""What `morphospace demo --simulate` replays: the Cahn–Hilliard map's own frames with --cahn-hilliard."""

from __future__ import annotations

import numpy as np

from app import demo
from core.data.store import Store
from core.settings import Settings


class FakeStore:
    """A clustering whose dataset holds 3 frames of 4 × 4; counts the reads of its images."""

    def __init__(self):
        self.images = np.arange(48, dtype=np.float32).reshape(3, 4, 4) / 48
        self.reads = 0

    def metadata(self, kind: str, id: str) -> dict:
        assert (kind, id) == ("clusterings", "cl-ch")
        return {"dataset_id": "ds-ch"}

    def array(self, kind: str, id: str, name: str, index=slice(None)) -> np.ndarray:
        assert (kind, id, name) == ("datasets", "ds-ch", "images")
        self.reads += 1
        return self.images[index]


class FakeSupervisor:
    def start(self, name: str, command: list[str]) -> list[str]:
        return command


def test_the_cahn_hilliard_demo_replays_its_own_frames(tmp_path, monkeypatch):
    store = FakeStore()
    monkeypatch.setattr(Store, "from_settings", classmethod(lambda cls, settings: store))
    settings = Settings(data_dir=tmp_path)
    series = demo.replay_series(settings, "cl-ch", cahn_hilliard=True)
    assert series == tmp_path / "replay-ds-ch.npy"
    np.testing.assert_array_equal(np.load(series), store.images)
    assert demo.replay_series(settings, "cl-ch", cahn_hilliard=True) == series and store.reads == 1  # kept
    command = demo.start_simulator(FakeSupervisor(), settings, series)
    assert command[command.index("simulate") + 1] == str(series)
    # the colloid demo replays the shipped frames, whatever the map
    assert demo.replay_series(settings, None) == demo.DEMO_FILE
    assert str(demo.DEMO_FILE) in demo.start_simulator(FakeSupervisor(), settings)
