"""A real RTSP camera for the tests: GStreamer's RTSP server streaming a folder of frames as H.264, in a loop.

Run by the system's Python (``/usr/bin/python3``), which has GStreamer's introspection bindings; the
project's virtual environment has none. Debian packages: ``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``,
``gstreamer1.0-plugins-good`` and ``gstreamer1.0-plugins-ugly`` (x264). The frames loop for as long as the
server runs, so a test decides how much of the clip it watches; each client gets its own pipeline, so a
camera that reconnects starts the clip again.

    /usr/bin/python3 tests/rtsp_server.py --frames DIR --port PORT [--fps 10]

prints ``READY rtsp://127.0.0.1:PORT/camera`` once it listens and serves until killed. ``--check`` only
says whether everything it needs is installed (exit 0) or what is missing (exit 1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: The GStreamer elements the media pipeline uses, with the Debian package that carries each.
ELEMENTS = {
    "multifilesrc": "gstreamer1.0-plugins-good",
    "jpegdec": "gstreamer1.0-plugins-good",
    "videoconvert": "gstreamer1.0-plugins-base",
    "x264enc": "gstreamer1.0-plugins-ugly",
    "rtph264pay": "gstreamer1.0-plugins-good",
}


def missing() -> list[str]:
    """What is not installed, as readable reasons (empty: everything is there)."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import Gst, GstRtspServer  # noqa: F401
    except (ImportError, ValueError) as exc:
        return [f"GStreamer's RTSP server bindings ({exc}; Debian: python3-gi gir1.2-gst-rtsp-server-1.0)"]
    Gst.init(None)
    absent = [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]
    return [f"GStreamer element {name} (Debian: {ELEMENTS[name]})" for name in absent]


def launch_line(frames: Path, fps: int) -> str:
    """JPEG files read in a loop at ``fps`` and encoded to H.264 as an IP camera sends it: no B-frames,
    a key frame every second (a client that connects mid-stream decodes within a second), SPS/PPS
    repeated before each key frame. One encoder thread: it is light at this size, and it keeps each
    frame one slice (x264's sliced threads split frames into slices, which OpenCV's FFmpeg build
    decoded with the lower part of every frame smeared when they came over RTSP)."""
    return (
        f'( multifilesrc location="{frames}/%05d.jpg" loop=true caps="image/jpeg,framerate={fps}/1" ! jpegdec ! '
        f"videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency threads=1 speed-preset=ultrafast "
        f"bframes=0 key-int-max={fps} ! video/x-h264,profile=constrained-baseline ! "
        "rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


def serve(frames: Path, port: int, fps: int) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(frames, fps))
    factory.set_shared(False)
    server.get_mount_points().add_factory("/camera", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}/camera", flush=True)
    GLib.MainLoop().run()


def main() -> None:
    parser = argparse.ArgumentParser(description="A test RTSP camera (GStreamer): a folder of JPEG frames as H.264, looped.")
    parser.add_argument("--frames", type=Path, help="folder of 00000.jpg, 00001.jpg, …")
    parser.add_argument("--port", type=int, default=8554, help="0: any free port")
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--check", action="store_true", help="only check that everything needed is installed")
    args = parser.parse_args()
    if args.check:
        problems = missing()
        print("; ".join(problems) or "ok")
        sys.exit(1 if problems else 0)
    if args.frames is None or not (args.frames / "00000.jpg").is_file():
        parser.error("--frames must name a folder holding 00000.jpg, 00001.jpg, …")
    serve(args.frames.resolve(), args.port, args.fps)


if __name__ == "__main__":
    main()
