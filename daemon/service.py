"""The composition root: build every stage of the pipeline from the validated config, and run it
under systemd (notify, watchdog and signals in daemon/systemd.py, logs in daemon/logs.py, the
sealing sink in daemon/sink.py)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

from snapseal.daemon.choose import CropChooser, TrackChoice
from snapseal.daemon.config import Config, require
from snapseal.daemon.errors import SnapsealError
from snapseal.daemon.pipeline import Pipeline, RunSummary
from snapseal.daemon.scoring.base import warm_up
from snapseal.daemon.sink import SealingSink
from snapseal.daemon.systemd import SystemdNotifier, harden_process, stop_on_signals

log = logging.getLogger("snapseal.service")


def load_device_key(config: Config, ephemeral: bool) -> Any:
    """The camera's signing key, or a throwaway one when ``ephemeral`` (demo/testing only)."""
    from snapseal.daemon.keys import DeviceKeyPair, load_device_signing

    if config.keys.device_key is not None:
        return load_device_signing(config.keys.device_key)
    if ephemeral:
        return DeviceKeyPair.generate()  # build_pipeline warns once everything else is in place
    raise SnapsealError("missing [keys] device_key: pass --device-key FILE (make one with "
                        "`snapseal keygen --device --out DIR`) or --ephemeral-device-key for a test run")


@dataclass
class BuiltPipeline:
    pipeline: Pipeline
    describe: str  # one line for logs and the READY status
    keyring: Any = None  # daemon.keyring.Keyring when records are sealed to period keys


def load_recipient(config: Config) -> tuple[Any, Any]:
    """(the one investigator public key, None) or (None, the signed keyring of period keys).

    Exactly one of ``[keys] recipient`` and ``[keys] keyring`` must be set; a keyring that fails
    its signature or names another camera stops the start with one line."""
    from snapseal.daemon.keys import load_investigator_public

    if config.keys.keyring is not None and config.keys.recipient is not None:
        raise SnapsealError("[keys] set recipient (one investigator key) or keyring (period keys), not both")
    if config.keys.keyring is None:
        return load_investigator_public(require(config, "keys.recipient", "--recipient")), None
    from snapseal.daemon.keyring import RUNS_OUT, load_keyring

    keyring = load_keyring(config.keys.keyring, config.camera.camera_id, config.keys.keyring_authority)
    log.info("%s; %s", keyring.describe(), RUNS_OUT)
    keyring.warn_if_low()
    return None, keyring


def build_pipeline(config: Config, ephemeral_device_key: bool = False, source: Any = None,
                   detector: Any = None, scorer: Any = None,
                   on_scored: Callable[[int, Any], None] | None = None,
                   on_choice: Callable[[TrackChoice, list[str]], None] | None = None,
                   background_scoring: bool = True) -> BuiltPipeline:
    """Every stage from the config. ``source``/``detector``/``scorer`` may be passed in (tests, bench).

    The scorer is warmed up (sessions built) before the pipeline exists, and crops are scored on
    the chooser's worker thread, overlapping the next frame's detection; ``background_scoring=
    False`` scores inline in the frame loop (same results; the benchmark compares the two)."""
    from snapseal.daemon.capture import open_source
    from snapseal.daemon.crop import EvidenceSettings, make_face_crop
    from snapseal.daemon.records.seal import RecordSealer
    from snapseal.daemon.records.store import RecordStore
    from snapseal.daemon.scoring.chooser import make_ranker
    from snapseal.daemon.scoring.dedupe import NearDuplicateFilter
    from snapseal.daemon.track import make_tracker

    harden_process()  # before any secret is loaded: no core file holds the device key or a crop
    store_dir = require(config, "store.dir", "--store")
    recipient, keyring = load_recipient(config)
    device_key = load_device_key(config, ephemeral_device_key)
    evidence = EvidenceSettings(config.evidence.max_side, config.evidence.context, config.evidence.person_region,
                                config.evidence.person_max_side)
    retention_s = config.store.retention_days * 86400.0
    store = RecordStore(store_dir, quota_bytes=int(config.store.quota_mb * 1024 * 1024), retention_s=retention_s)
    sealer = RecordSealer(keyring if keyring is not None else recipient, device_key, camera_id=config.camera.camera_id,
                          retention=retention_s, header_resolution_s=config.store.header_resolution_s)
    # Cheap checks first (keys, store, source), then the slow loads (scorer, detector).
    if source is None:
        source = open_source(config.camera.source, reconnect_max_s=config.camera.reconnect_max_s,
                             realtime=config.camera.realtime)
    try:
        if scorer is None:
            from snapseal.daemon.scoring import load_scorer

            scorer = load_scorer(config.quality.bundle, backend=config.quality.backend, scorer=config.quality.scorer_name)
        warm_up(scorer)
        if detector is None:
            from snapseal.daemon.detect import detector_from_config

            detector = detector_from_config(config.detector)
    except BaseException:
        source.close()
        raise
    tracker = make_tracker(config.tracker.kind, config.tracker.max_age_frames, config.tracker.min_length_frames,
                           max_lost_frames=config.tracker.max_lost_frames)
    chooser = CropChooser(scorer, top_k=config.quality.top_k, clip_frames=config.quality.clip_frames,
                          batch_size=config.quality.batch_size, on_scored=on_scored, background=background_scoring,
                          ranker=make_ranker(config.quality.chooser))

    def cropper(frame, detection):
        return make_face_crop(frame, detection, evidence=evidence)

    from snapseal.daemon.detect import schedule_from_config

    near_duplicates = config.quality.skip_near_duplicates
    pipeline = Pipeline(source, detector, tracker, cropper, chooser,
                        SealingSink(sealer, store, model_id=scorer.model_id,
                                    max_pending=config.store.pending_max_records,
                                    provisional_interval_s=config.store.provisional_interval_s),
                        purge_interval_s=config.store.purge_interval_min * 60.0, on_choice=on_choice,
                        schedule=schedule_from_config(detector, config.detector),
                        crop_filter=NearDuplicateFilter(near_duplicates) if near_duplicates > 0 else None)
    if config.keys.device_key is None:
        log.warning("using an ephemeral device key %s: records cannot be tied to a known camera", device_key.key_id)
    sealed_to = keyring.describe() if keyring is not None else f"recipient {recipient.key_id}"
    describe = (f"camera {config.camera.camera_id} source {source.spec.describe()} detector {pipeline.schedule.name} "
                f"tracker {tracker.name} scorer {scorer.name} ({scorer.model_id}) chooser {config.quality.chooser} "
                f"backend {config.quality.backend} store {store_dir} {sealed_to} device {device_key.key_id}")
    return BuiltPipeline(pipeline, describe, keyring)


def status_line(summary: RunSummary, keyring: Any = None, sink: Any = None, waiting: str | None = None) -> str:
    line = (f"{summary.frames} frames, {summary.fps:.1f} fps, {len(summary.sealed_tracks())} tracks sealed, "
            f"{summary.records_written} records")
    if sink is not None and hasattr(sink, "status"):
        line += f" ({sink.status()})"
    if waiting:
        line = f"waiting for camera {waiting}; {line}"
    return line if keyring is None else f"{line}; {keyring.status()}"


def _waiting_for(source: Any) -> str | None:
    waiting = getattr(source, "waiting_for", None)
    return waiting() if callable(waiting) else None


def run_service(built: BuiltPipeline, stop: threading.Event | None = None,
                notifier: SystemdNotifier | None = None) -> RunSummary:
    """Run until the source ends or a signal arrives; systemd hears READY, WATCHDOG, STATUS."""
    stop = stop or threading.Event()
    notifier = notifier or SystemdNotifier()
    pipeline = built.pipeline
    previous_tick = pipeline.on_tick

    keyring = built.keyring
    sink = pipeline.sink
    if hasattr(sink, "attach") and getattr(sink, "chooser", None) is None:
        sink.attach(pipeline.chooser, pipeline.tracker)  # provisional records of tracks still in view

    def tick(summary: RunSummary) -> None:
        waiting = _waiting_for(pipeline.source)
        # The watchdog hears from us only while frames arrive or we knowingly wait for a camera.
        notifier.tick(lambda: status_line(summary, keyring, sink, waiting), progress=summary.frames,
                      waiting=waiting is not None)
        if hasattr(sink, "tick"):
            sink.tick()
        if keyring is not None:
            keyring.warn_if_low()  # rate-limits its own warnings
        if previous_tick is not None:
            previous_tick(summary)

    pipeline.on_tick = tick
    try:
        with stop_on_signals(stop):  # before READY: a supervisor may stop us right after it
            log.info("snapseal running: %s", built.describe)
            notifier.ready(f"running: {built.describe}")
            summary = pipeline.run(stop)
    finally:
        notifier.stopping("stopping: sealed open tracks")
        notifier.close()
    stats = getattr(sink, "stats", None)
    if stats is not None:  # what reached the disk, beside what was sealed
        summary.records_stored = stats.records_stored
        summary.records_lost = stats.records_lost
        summary.records_queued = len(getattr(sink, "pending", []))
        if stats.records_lost:
            log.error("%d record(s) lost: %s", stats.records_lost, "; ".join(stats.lost_reasons[:5]))
    fields = {k: v for k, v in summary.as_dict().items() if k != "tracks"}
    if stats is not None:
        fields["sink"] = {k: v for k, v in stats.as_dict().items() if k != "lost_reasons"}
    log.info("snapseal stopped: %s", status_line(summary, keyring, sink), extra={"fields": {"summary": fields}})
    return summary
