"""Extra outputs of a live show: the packets the HLS encoders made, muxed again into other containers.

Encoding is the expensive part, so it happens once: every output gets the same H.264 + AAC
packets, each into its own container whose streams are copies of the HLS streams (PyAV stream
templates). The MP4 recording is a local file, muxed on the render thread. The RTMP push (FLV)
talks to a network peer that may be down, slow or gone, so it runs on its own thread behind a
bounded queue: when it cannot keep up it is dropped and reconnected, the show never waits.
"""
from __future__ import annotations

import logging
import queue
import subprocess
import sys
import threading
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import av

from studio.hls import HlsWriter
from studio.media import EncoderSettings

log = logging.getLogger(__name__)

RETRY_S = 5.0  # a failed push reconnects this often while its URL is set
QUEUE_PACKETS = 250  # ~2.5 s of video and audio packets: more behind than this drops the connection
CLOSE_TIMEOUT_S = 5.0  # how long a stopping push may take to hand over its last packets
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # where the relay child finds `studio`
RECORDING_FLAGS = "frag_keyframe+empty_moov+default_base_moof"  # every fragment playable: a crash keeps the file


class Output(Protocol):
    """Something the encoded packets go to; `start` once the encoders' parameters (extradata) are known."""

    def start(self, templates: Sequence[av.stream.Stream]) -> None: ...
    def send(self, packets: Sequence[av.Packet]) -> None: ...
    def close(self) -> None: ...


def check_rtmp_url(url: str) -> str:
    """The URL itself, or ValueError when it is not an RTMP(S) address."""
    parts = urlsplit(url)
    if parts.scheme not in ("rtmp", "rtmps") or not parts.hostname:
        raise ValueError("rtmp_url: must be an rtmp:// or rtmps:// address")
    return url


class Remux:
    """A container fed packets encoded for another one; its streams copy the template streams, in order."""

    def __init__(self, container: av.container.OutputContainer, templates: Sequence[av.stream.Stream]) -> None:
        self._container = container
        self._streams = [container.add_stream_from_template(t) for t in templates]

    def mux(self, packet: av.Packet) -> None:
        packet.stream = self._streams[packet.stream_index]
        self._container.mux_one(packet)

    def close(self) -> None:
        self._container.close()


def clone(packet: av.Packet) -> av.Packet:
    """A packet of its own (muxing rewrites a packet's stream and time base; threads must not share one)."""
    copy = av.Packet(bytes(packet))
    copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
    copy.time_base = packet.time_base
    copy.is_keyframe = packet.is_keyframe
    copy.stream = packet.stream
    return copy


class Tee:
    """The HLS container and the attached outputs: packets are muxed into the playlist, then handed to each output."""

    def __init__(self, hls: av.container.OutputContainer, templates: Sequence[av.stream.Stream]) -> None:
        self._hls = hls
        self._templates = tuple(templates)
        self._outputs: tuple[Output, ...] = ()
        self._started = False
        self._lock = threading.Lock()  # attach/detach come from the event loop, mux from the render thread

    def attach(self, output: Output) -> None:
        with self._lock:
            if self._started:
                output.start(self._templates)
            self._outputs = (*self._outputs, output)

    def detach(self, output: Output) -> None:
        with self._lock:
            self._outputs = tuple(o for o in self._outputs if o is not output)

    def mux(self, packets: Sequence[av.Packet]) -> None:
        if not packets:
            return
        self._hls.mux(packets)  # the first packet writes the header: the templates' extradata is known from here
        with self._lock:
            if not self._started:
                self._started = True
                for output in self._outputs:
                    output.start(self._templates)
            outputs = self._outputs
        for output in outputs:
            try:
                output.send(packets)
            except Exception:  # a broken extra output is dropped; the show and its HLS go on
                log.exception("output %s failed; dropping it", output)
                self.detach(output)
                with suppress(Exception):
                    output.close()

    def close(self) -> None:
        """After the encoders' last packets: the playlist ends, then every output."""
        try:
            self._hls.close()
        finally:
            with self._lock:
                outputs, self._outputs = self._outputs, ()
            for output in outputs:
                try:
                    output.close()
                except Exception:
                    log.exception("output %s did not close cleanly", output)


class TeeWriter(HlsWriter):
    """The live HLS writer whose encoded packets also go to attached outputs (`attach`, `detach`)."""

    def __init__(self, out_dir: Path, settings: EncoderSettings) -> None:
        super().__init__(out_dir, settings)
        self.tee = Tee(self._container, (self._video, self._audio))

    def _mux(self, packets: list[av.Packet]) -> None:
        self.tee.mux(packets)

    def _finish(self) -> None:
        self.tee.close()

    def attach(self, output: Output) -> None:
        self.tee.attach(output)

    def detach(self, output: Output) -> None:
        self.tee.detach(output)


class Recording:
    """The whole show as a fragmented MP4 file, written on the render thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._remux: Remux | None = None

    def start(self, templates: Sequence[av.stream.Stream]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(str(self.path), "w", format="mp4", options={"movflags": RECORDING_FLAGS})
        self._remux = Remux(container, templates)

    def send(self, packets: Sequence[av.Packet]) -> None:
        if self._remux is not None:
            for packet in packets:
                self._remux.mux(packet)

    def close(self) -> None:
        if self._remux is not None:
            self._remux.close()
            self._remux = None

    def __repr__(self) -> str:
        return f"Recording({self.path})"


class RtmpPush:
    """FLV over RTMP to one URL; `status` is "connecting", "live" or "failed: <reason>".

    The RTMP connection lives in a child process (`relay`, below) fed FLV through a pipe: PyAV
    connects and handshakes holding the GIL, so an unresponsive peer would otherwise freeze
    every thread of the show. A thread of ours muxes the queued packets into the pipe.
    """

    def __init__(self, url: str) -> None:
        self.url = check_rtmp_url(url)
        self.status = "connecting"
        self._queue: queue.Queue[av.Packet | None] = queue.Queue(QUEUE_PACKETS)
        self._accepting = threading.Event()  # packets are queued only while a relay runs
        self._closed = threading.Event()
        self._behind = False
        self._relay: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._templates: Sequence[av.stream.Stream] = ()

    @property
    def where(self) -> str:
        """The URL without its path: stream keys stay out of logs."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 1935}"

    def start(self, templates: Sequence[av.stream.Stream]) -> None:
        self._templates = tuple(templates)
        self._thread = threading.Thread(target=self._run, name=f"linkup-rtmp-{self.where}", daemon=True)
        self._thread.start()

    def send(self, packets: Sequence[av.Packet]) -> None:
        if not self._accepting.is_set() or self._behind:
            return
        for packet in packets:
            try:
                self._queue.put_nowait(clone(packet))
            except queue.Full:  # drop the connection, never the show: the relay is killed, the push reconnects
                self._behind = True
                if self._relay is not None:
                    self._relay.kill()
                return

    def close(self) -> None:
        """Push what is queued, end the FLV stream and stop (waits a few seconds at most)."""
        self._closed.set()
        with suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT_S)
        if self._relay is not None and self._relay.poll() is None:
            self._relay.kill()

    def __repr__(self) -> str:
        return f"RtmpPush({self.where})"

    def _run(self) -> None:
        while not self._closed.is_set():  # status stays "failed: ..." while retrying, until a relay is live
            self._behind = False
            relay = subprocess.Popen([sys.executable, "-m", "studio.rtmp", self.url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=PACKAGE_ROOT)
            self._relay = relay
            watcher = threading.Thread(target=self._watch, args=(relay,), daemon=True)
            watcher.start()
            try:
                self._pipe(relay)
                reason = None
            except (av.error.FFmpegError, OSError) as exc:
                reason = _reason(exc)
            self._accepting.clear()
            with suppress(subprocess.TimeoutExpired):
                relay.wait(CLOSE_TIMEOUT_S)
            if relay.poll() is None:
                relay.kill()
            watcher.join()
            if self._behind:
                self.status = f"failed: fell behind by more than {QUEUE_PACKETS} packets"
            elif reason is not None and not self.status.startswith("failed"):
                self.status = f"failed: {reason}"
            if self.status.startswith("failed"):
                log.warning("rtmp push to %s %s; retrying every %g s", self.where, self.status, RETRY_S)
            self._closed.wait(RETRY_S)

    def _pipe(self, relay: subprocess.Popen[bytes]) -> None:
        """Mux the queued packets as FLV into the relay's stdin, from the first keyframe on, until closed."""
        assert relay.stdin is not None
        with relay.stdin, av.open(relay.stdin, "w", format="flv") as container:
            remux = Remux(container, self._templates)
            self._drain()
            self._accepting.set()
            keyframe_seen = False
            while (packet := self._next()) is not None:
                keyframe_seen = keyframe_seen or (packet.stream.type == "video" and packet.is_keyframe)
                if keyframe_seen:  # the peer's decoder starts on a keyframe
                    remux.mux(packet)
                if relay.poll() is not None:
                    raise BrokenPipeError("the relay exited")

    def _watch(self, relay: subprocess.Popen[bytes]) -> None:
        """The relay reports on its stdout: "live" once the peer took a packet, "failed: <reason>" on error."""
        assert relay.stdout is not None
        for raw in relay.stdout:
            line = raw.decode("utf-8", "replace").strip()
            if line == "live" or line.startswith("failed: "):
                self.status = line
                if line == "live":
                    log.info("rtmp push to %s is live", self.where)

    def _next(self) -> av.Packet | None:
        """The next packet to push; None once closed and drained."""
        while True:
            if self._behind:
                raise BrokenPipeError("behind")
            try:
                return self._queue.get(timeout=0.5)
            except queue.Empty:
                if self._closed.is_set():
                    return None

    def _drain(self) -> None:
        with suppress(queue.Empty):
            while True:
                self._queue.get_nowait()


def _reason(exc: BaseException) -> str:
    """Why, without the URL (FFmpeg's messages repeat it, stream key included)."""
    return getattr(exc, "strerror", None) or type(exc).__name__


def relay(url: str) -> int:
    """The child process: FLV read from stdin, pushed to `url` as it comes."""
    try:
        with av.open(sys.stdin.buffer, "r", format="flv") as source, av.open(url, "w", format="flv") as peer:
            streams = {s.index: peer.add_stream_from_template(s) for s in source.streams}
            live = False
            for packet in source.demux():
                if packet.dts is None or packet.stream.index not in streams:
                    continue
                packet.stream = streams[packet.stream.index]
                peer.mux(packet)
                if not live:
                    print("live", flush=True)
                    live = True
    except (av.error.FFmpegError, OSError) as exc:
        print(f"failed: {_reason(exc)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(relay(sys.argv[1]))
