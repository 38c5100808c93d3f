"""Fuzzing the three parsers that read untrusted bytes: records, the config file, key files.

Only documented errors come out (RecordError / SnapsealError, one line), never a traceback, and
no mutated record ever verifies. Two modes:

- CI mode (default): a few thousand cases, seconds;
- long mode: ``SNAPSEAL_FUZZ=long`` (>= 10,000 records per record test), e.g.
  ``SNAPSEAL_FUZZ=long .venv/work/bin/python -m pytest -q -s tests/daemon/records/test_fuzz.py``
  (with ``-s`` each test prints how many cases it ran and what came out).
"""

from __future__ import annotations

import base64
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
from craft import craft, good_meta, image_entry
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapseal.daemon import keys
from snapseal.daemon.config import load_config
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.records import layout
from snapseal.daemon.records.layout import RecordError
from snapseal.daemon.records.verify import verify_record
from snapseal.investigator.open import open_record

LONG = os.environ.get("SNAPSEAL_FUZZ") == "long"
MUTATIONS = 30_000 if LONG else 1_500
STRUCTURED = 10_000 if LONG else 150
FILES = 3_000 if LONG else 150
VECTORS = Path(__file__).resolve().parents[2] / "vectors"
INVESTIGATOR = keys.InvestigatorKeyPair.generate()
DEVICE = keys.DeviceKeyPair.generate()
PNG = layout.encode_png(np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8))
COLOUR_PNG = layout.encode_png(np.random.default_rng(1).integers(0, 256, (12, 10, 3), dtype=np.uint8))


def _vector_keys():
    pair = keys.InvestigatorKeyPair.from_private_bytes(
        base64.b64decode(json.loads((VECTORS / "keys" / "investigator.key").read_text())["key"]))
    device = keys.DevicePublicKey.from_bytes(base64.b64decode(json.loads((VECTORS / "keys" / "device.pub").read_text())["key"]))
    return pair, device


def _mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        kind = rng.randrange(7)
        position = rng.randrange(len(out)) if out else 0
        if kind == 0 and out:
            out[position] ^= 1 << rng.randrange(8)
        elif kind == 1 and out:
            out[position] = rng.randrange(256)
        elif kind == 2:
            del out[position:position + rng.randrange(1, 64)]
        elif kind == 3:
            out[position:position] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        elif kind == 4:
            out = out[:position]
        elif kind == 5 and len(out) > 8:
            start = rng.randrange(len(out) - 4)
            out[position:position] = out[start:start + rng.randrange(1, 32)]
        else:
            out[position:position + 8] = (rng.randrange(2**64)).to_bytes(8, "big")  # a length/time field
    return bytes(out)


def test_mutated_records_never_verify_and_only_give_documented_errors():
    investigator, device = _vector_keys()
    seeds = [path.read_bytes() for path in sorted((VECTORS / "records").glob("*.snap"))]
    rng = random.Random(1414)
    counts = {"cases": 0, "unchanged": 0, "refused": 0}
    for case in range(MUTATIONS):
        original = seeds[case % len(seeds)]
        data = _mutate(original, rng)
        counts["cases"] += 1
        if data == original:
            counts["unchanged"] += 1
            continue
        with pytest.raises(RecordError):
            verify_record(data, [device])
        with pytest.raises(RecordError):
            open_record(data, investigator, [device])
        counts["refused"] += 1
    print(f"\nmutated records: {counts['cases']} cases, {counts['refused']} refused by verify and open, "
          f"{counts['unchanged']} mutations that changed nothing, 0 accepted, 0 tracebacks")
    assert counts["refused"] == counts["cases"] - counts["unchanged"] > 0


JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                      st.floats(allow_nan=False), st.text(max_size=12))
JSON_VALUE = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                          max_leaves=8)
META_KEYS = list(layout.META_FIELDS_V2)
IMAGE_KEYS = list(layout.IMAGE_FIELDS_V2)


@st.composite
def signed_records(draw):
    """A correctly signed and sealed record whose content is a near-valid document with a few
    fields changed, deleted or added, or raw bytes: everything behind the signatures."""
    roles = draw(st.lists(st.sampled_from(["best", "extra", "clip", "evidence", "person", "x/y", ""]), min_size=1, max_size=3))
    entries = [image_entry(16, 16, role=role) if role not in ("evidence", "person")
               else image_entry(10, 12, channels=3, role=role, score=None) for role in roles]
    images = [COLOUR_PNG if role in ("evidence", "person") else PNG for role in roles]
    meta = good_meta(DEVICE, entries)
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(["meta", "image"]))
        document = meta if target == "meta" or not entries else entries[draw(st.integers(0, len(entries) - 1))]
        names = META_KEYS if target == "meta" else IMAGE_KEYS
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "set":
            document[draw(st.sampled_from(names))] = draw(JSON_VALUE)
        elif action == "delete":
            document.pop(draw(st.sampled_from(names)), None)
        else:
            document[draw(st.text(max_size=8))] = draw(JSON_VALUE)
    if draw(st.integers(0, 9)) == 0:
        images[draw(st.integers(0, len(images) - 1))] = draw(st.binary(max_size=64))
    if draw(st.integers(0, 9)) == 0:
        images = images[: draw(st.integers(1, len(images)))] + draw(st.lists(st.just(PNG), max_size=2))
    meta_json = json.dumps(meta).encode() if draw(st.integers(0, 19)) else draw(st.binary(max_size=80))
    sequence = draw(st.sampled_from([1, 1, 1, 0, 2]))
    return craft(DEVICE, INVESTIGATOR.public, meta_json, images, sequence=sequence)


STRUCTURED_COUNTS = {"cases": 0, "opened": 0, "refused": 0}


@settings(max_examples=STRUCTURED, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(record=signed_records())
def test_signed_content_opens_cleanly_or_gives_a_documented_error(record):
    STRUCTURED_COUNTS["cases"] += 1
    verify_record(record)  # signed by the device: structure and signature are right
    try:
        opened = open_record(record, INVESTIGATOR)
    except RecordError as error:
        assert "\n" not in str(error) and "Traceback" not in str(error)
        STRUCTURED_COUNTS["refused"] += 1
        return
    STRUCTURED_COUNTS["opened"] += 1
    names = [layout.image_file_name(opened.header.record_id, i, image.info) for i, image in enumerate(opened.images)]
    assert all("/" not in name and name.endswith(".png") for name in names)
    json.dumps(opened.summary(names), allow_nan=False)


def test_structured_fuzz_ran():
    print(f"\nsigned records with fuzzed content: {STRUCTURED_COUNTS}")
    if STRUCTURED_COUNTS["cases"]:  # (when run with the test above)
        assert STRUCTURED_COUNTS["opened"] + STRUCTURED_COUNTS["refused"] == STRUCTURED_COUNTS["cases"]


TOML_LINE = st.one_of(
    st.sampled_from(["[camera]", "[store]", "[keys]", "[quality]", "[tracker]", "[detector]", "[service]",
                     "[evidence]", "[nope]", "[[camera]]", "store = 3", "x = [1, 2", "= 1"]),
    st.builds(lambda k, v: f"{k} = {v}",
              st.sampled_from(["source", "camera_id", "quota_mb", "retention_days", "top_k", "min_face_px", "dir",
                               "kind", "backend", "log_format", "recipient", "unknown", "max_side", "realtime",
                               "provisional_interval_s", "header_resolution_s"]),
              st.sampled_from(["1", "-1", "0", "2e7", "1e400", "nan", "inf", '"x"', '""', "true", "[1]", "{a = 1}",
                               '"/nonexistent"', "1979-05-27", "0x10", "'\\u0000'", "3.5"])),
    st.text(max_size=20),
)


@settings(max_examples=FILES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(lines=st.lists(TOML_LINE, max_size=12))
def test_config_loader_gives_only_one_line_errors(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("cfg") / "snapseal.toml"
    path.write_bytes("\n".join(lines).encode("utf-8", errors="replace"))
    try:
        load_config(path)
    except SnapsealError as error:
        assert "\n" not in str(error).strip()


KEY_KINDS = ["investigator-public", "investigator-private", "device-public", "device-private", "other", 1, None]


@st.composite
def key_documents(draw):
    raw = draw(st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40)))
    document = {"snapseal_key": draw(st.sampled_from(KEY_KINDS)), "version": draw(st.sampled_from([1, 1, 2, "1", None])),
                "key_id": draw(st.one_of(st.just(keys.key_id_of(raw)), st.text(max_size=16), st.integers())),
                "key": draw(st.one_of(st.just(base64.b64encode(raw).decode()), st.text(max_size=50), st.integers()))}
    for name in draw(st.lists(st.sampled_from(list(document)), max_size=2)):
        document.pop(name, None)
    blob = json.dumps(document).encode()
    if draw(st.integers(0, 4)) == 0:
        blob = draw(st.binary(max_size=200))
    return blob


@settings(max_examples=FILES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(blob=key_documents())
def test_key_file_loaders_give_only_one_line_errors(tmp_path_factory, blob):
    path = tmp_path_factory.mktemp("key") / "k.key"
    path.write_bytes(blob)
    os.chmod(path, 0o600)
    for loader in (keys.load_investigator_public, keys.load_investigator_private, keys.load_device_public,
                   keys.load_device_signing, keys.describe_key_file, keys.load_trust_file):
        try:
            loader(path)
        except SnapsealError as error:
            assert "\n" not in str(error)
