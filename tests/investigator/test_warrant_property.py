"""Property: a warrant opens exactly the records its camera made inside its window, over random
windows given in several time zones, cameras whose periods are UTC days, local days across a
daylight-saving change, local hours or two-day periods, and records one millisecond either side
of midnight, of period boundaries and of the window's edges."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import nacl.public
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapseal.daemon.keyring import load_keyring
from snapseal.investigator import authority as auth
from snapseal.investigator import warrant as wr

FIRST_DAY = date(2026, 3, 1)  # covers the US (8 March) and EU (29 March) clock changes
DAYS = 50
CAMERAS = {  # camera -> (period seconds, time zone its periods follow)
    "cam-utc": (86400, "UTC"),
    "cam-bxl": (86400, "Europe/Brussels"),
    "cam-nyc-hourly": (3600, "America/New_York"),
    "cam-kol-2day": (2 * 86400, "Asia/Kolkata"),
}
WINDOW_ZONES = ["UTC", "Europe/Brussels", "America/New_York", "Asia/Kolkata", "Pacific/Chatham", "Australia/Lord_Howe"]
DURATIONS_MS = [1, 999, 3_600_000, 86_400_000 - 1, 86_400_000, 86_400_000 + 1, 3 * 86_400_000 + 7_200_000]


@dataclass(frozen=True)
class Header:
    record_id: str
    recipient_key_id: str
    created_ms: int


@dataclass(frozen=True)
class Opened:
    header: Header
    camera_id: str


class World(tuple):
    def __repr__(self) -> str:  # keep hypothesis' report short
        return "World(...)"


HEADER_RESOLUTION_MS = 3_600_000  # records keep their creation time floored to an hour in the clear


def open_through(source, camera, record_id, key_id, created_ms, box):
    """What `snapseal open` does with a warrant: key_for on the plaintext header (coarse time), decrypt,
    admit on the exact sealed time. Returns the plaintext, or None when refused."""
    coarse = Header(record_id, key_id, created_ms // HEADER_RESOLUTION_MS * HEADER_RESOLUTION_MS)
    try:
        pair = source.key_for(coarse)
    except wr.NotCoveredError:
        return None
    plaintext = nacl.public.SealedBox(pair.private).decrypt(box)
    try:
        source.admit(Opened(Header(record_id, key_id, created_ms), camera))
    except wr.NotCoveredError:
        return None
    return plaintext


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("warrant-property")
    auth.init_authority(root / "auth", 2, 3, root / "shares", who="test")
    authority = auth.Authority(root / "auth")
    secret = authority.unlock_files(sorted((root / "shares").glob("share-*"))[:2])
    keyrings = {}
    for camera, (period_s, zone) in CAMERAS.items():
        issued = auth.issue_keyring(authority, secret, camera, days=DAYS, start_day=FIRST_DAY, period_s=period_s,
                                    tz_name=zone)
        path = root / f"{camera}.keyring"
        path.write_bytes(issued.blob)
        keyrings[camera] = load_keyring(path, camera, root / "auth" / "authority.pub", now_s=issued.start_ms / 1000)
    yield World((root, authority, secret, keyrings))
    secret.wipe()


def midnights_near(zone: str, low_ms: int, high_ms: int) -> list[int]:
    tz = auth.resolve_tz(zone)
    day = datetime.fromtimestamp(low_ms / 1000, tz).date() - timedelta(days=1)
    found = []
    while True:
        ms = auth.local_midnight_ms(day, tz)
        if ms > high_ms:
            return found
        found.append(ms)
        day += timedelta(days=1)


counter = itertools.count()


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_window_opens_exactly_its_cameras_records(world, data):
    root, authority, secret, keyrings = world
    camera = data.draw(st.sampled_from(sorted(CAMERAS)), label="camera")
    keyring = keyrings[camera]
    low, high = keyring.start_ms, keyring.end_ms
    duration = data.draw(st.sampled_from(DURATIONS_MS) | st.integers(1, 5 * 86_400_000), label="duration")
    start_ms = data.draw(st.integers(low - 86_400_000, high - 1), label="start")
    end_ms = start_ms + duration
    zone = data.draw(st.sampled_from(WINDOW_ZONES), label="window zone")
    tz = auth.resolve_tz(zone)
    # the window as the trustees type it: local time in some zone, with its offset
    texts = [datetime.fromtimestamp(ms / 1000, tz).isoformat(timespec="milliseconds") for ms in (start_ms, end_ms)]
    assert wr.parse_window(*texts) == (start_ms, end_ms)
    overlapping = [p for p in keyring.periods if p.start_ms < end_ms and start_ms < p.end_ms]
    if not overlapping:
        return  # nothing to issue: covered by test_warrant's "no period key overlaps"
    out = root / f"w{next(counter)}.warrant"
    warrant, _ = wr.issue_warrant(authority, secret, [camera], start_ms, end_ms, "property", out, who="test",
                                  at_ms=low)
    # the warrant holds the keys of exactly the periods that overlap the window, nothing else
    assert set(warrant.keys) == {p.key_id for p in overlapping}
    source = wr.WarrantKeySource(warrant, authority.log, "test", clock=lambda: low)

    edges = [start_ms, end_ms] + midnights_near(zone, start_ms, end_ms) + midnights_near(CAMERAS[camera][1], start_ms, end_ms)
    edges += [p.start_ms for p in overlapping] + [overlapping[-1].end_ms]
    times = {edge + delta for edge in edges for delta in (-1, 0, 1)}
    times |= set(data.draw(st.lists(st.integers(start_ms - 2 * 86_400_000, end_ms + 2 * 86_400_000),
                                    max_size=8), label="more times"))
    for index, created_ms in enumerate(sorted(t for t in times if low <= t < high)):
        recipient = keyring.recipient_for(created_ms / 1000)
        box = nacl.public.SealedBox(recipient.key).encrypt(b"face")
        record_id = f"{index:032x}"
        opened = open_through(source, camera, record_id, recipient.key_id, created_ms, box)
        if start_ms <= created_ms < end_ms:
            assert opened == b"face"
        else:
            assert opened is None
        if created_ms >= end_ms:  # after the window: refused before anything is decrypted
            with pytest.raises(wr.NotCoveredError):
                source.key_for(Header(record_id, recipient.key_id, created_ms))
        if not any(p.contains_ms(created_ms) for p in overlapping):
            # outside the warrant's periods: no key it holds opens the box, whatever the software does
            for pair in warrant.keys.values():
                with pytest.raises(nacl.exceptions.CryptoError):
                    nacl.public.SealedBox(pair.private).decrypt(box)
        # the same moment on any other camera is never covered
        other = next(c for c in sorted(CAMERAS) if c != camera)
        if keyrings[other].period_at_ms(created_ms) is not None:
            foreign = keyrings[other].recipient_for(created_ms / 1000)
            with pytest.raises(wr.NotCoveredError, match="does not hold"):
                source.key_for(Header("f" * 32, foreign.key_id, created_ms))
    out.unlink()
