"""A scan reaches a writer only as pixels we drew ourselves.

Whoever hands us a "scan" (the provider, a service's e-mail, a volunteer's upload) may hand
us a tracking beacon: an HTML page, a PDF that calls home when opened, an image carrying
metadata. So the bytes decide what a file is (never the declared type), and every page is
re-encoded: images through Pillow without metadata, PDFs rendered to images by pdfium.
What comes out is plain JPEG; anything else raises UnsafeScan with a reason for a person.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import puremagic
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from gateway import faults
from gateway.child import Child, ChildPool

DEFAULT_MAX_PAGES = 20
MAX_PIXELS = 40_000_000  # one page; an A4 page at 600 dpi is ~35 M
RENDER_DPI = 150  # PDF pages: legible handwriting, a few hundred KB a page
JPEG_QUALITY = 85
IMAGE_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "GIF", "BMP")

# pdfium is not thread-safe; the dashboard renders uploads from several threads.
_PDFIUM = threading.Lock()


class UnsafeScan(ValueError):
    """Not a scan we can pass on; `reason` is for the person who looks at it in triage."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ScanPage:
    data: bytes
    content_type: str
    filename: str


def _is_pdf(data: bytes) -> bool:
    return data[:1024].lstrip().startswith(b"%PDF-")


def _looks_like(data: bytes) -> str:
    """A name for what the bytes are, for the person in triage (puremagic's guess)."""
    try:
        return puremagic.magic_string(data[:8192])[0].name
    except (puremagic.PureError, IndexError, ValueError):
        return "unknown data"


def reencode_scan(data: bytes, *, max_pages: int = DEFAULT_MAX_PAGES) -> list[ScanPage]:
    """The scan as freshly encoded JPEG pages, or UnsafeScan(reason)."""
    if not data:
        raise UnsafeScan("the file is empty")
    # Pillow and pdfium recognise their formats by the bytes; the declared type is unused.
    images = _render_pdf(data, max_pages) if _is_pdf(data) else _read_image(data, max_pages)
    return [ScanPage(_jpeg(image), "image/jpeg", f"page-{n}.jpg")
            for n, image in enumerate(images, start=1)]


def _read_image(data: bytes, max_pages: int) -> list[Image.Image]:
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            frames = []
            one_page = getattr(image, "n_frames", 1) == 1
            for n, frame in enumerate(ImageSequence.Iterator(image), start=1):
                if n > max_pages:
                    raise UnsafeScan(f"more than {max_pages} pages")
                _check_size(frame.size)
                frame.load()
                # Upright as the scanner meant it, then the metadata is left behind. One
                # page is turned where it lies (a copy of the pixels is the reader's peak
                # memory); each page of several is a copy, as the next one reuses `frame`.
                if one_page:
                    ImageOps.exif_transpose(frame, in_place=True)
                    page = frame
                else:
                    page = ImageOps.exif_transpose(frame)
                frames.append(_plain(page, own=True))
                if image.format in ("GIF", "WEBP"):
                    break  # an animation is not pages: its first frame is the picture
            return frames
    except UnsafeScan:
        raise
    except UnidentifiedImageError as exc:
        raise UnsafeScan(f"not an image or a PDF (it looks like: {_looks_like(data)})") from exc
    except Image.DecompressionBombError as exc:
        raise UnsafeScan(f"an image that cannot be read safely ({exc})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt
        raise UnsafeScan(f"a damaged image ({type(exc).__name__})") from exc


def _render_pdf(data: bytes, max_pages: int) -> list[Image.Image]:
    import pypdfium2 as pdfium  # only here: the parse workers never need it

    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            raise UnsafeScan(f"a PDF that cannot be opened ({exc})") from exc
        try:
            if len(pdf) == 0:
                raise UnsafeScan("a PDF without pages")
            if len(pdf) > max_pages:
                raise UnsafeScan(f"a PDF of {len(pdf)} pages (at most {max_pages})")
            images = []
            for page in pdf:
                width, height = page.get_size()  # points
                scale = RENDER_DPI / 72
                if width * height * scale * scale > MAX_PIXELS:
                    scale = (MAX_PIXELS / (width * height)) ** 0.5
                # Only what the page shows: no forms, no annotations (links, actions).
                bitmap = page.render(scale=scale, may_draw_forms=False, draw_annots=False)
                images.append(_plain(bitmap.to_pil()))
                page.close()
            return images
        except pdfium.PdfiumError as exc:
            raise UnsafeScan(f"a PDF that cannot be rendered ({exc})") from exc
        finally:
            pdf.close()


def _check_size(size: tuple[int, int]) -> None:
    if size[0] * size[1] > MAX_PIXELS or min(size) < 1:
        raise UnsafeScan(f"an image of {size[0]}x{size[1]} pixels is not a page")


def _plain(image: Image.Image, *, own: bool = False) -> Image.Image:
    """Pixels only, in a mode JPEG takes: no palette, no alpha (flattened on white). A new
    image, unless `own` (the pixels are already ours alone) and JPEG takes them as they are;
    pdfium's pages are views of its own buffer, freed with the page, so they are copied."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    if own and image.mode in ("L", "RGB"):
        return image  # no second copy of the pixels: the reader's peak memory
    return image.convert("L" if image.mode in ("1", "I;16", "I", "F") else "RGB")


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # A new file from the pixels: Pillow would carry EXIF, XMP, ICC profile and comments
    # over from `info`, so that goes first.
    image.info = {}
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


# -- the same, in a limited child process ---------------------------------------------
# pdfium and Pillow's decoders are C code fed hostile bytes. In the worker, a scan that
# exhausts memory or crashes would take the worker down, and the reply poll would meet the
# same scan again after every restart. In a child with an address-space limit, a CPU limit
# and a wall time, such a scan is just refused, and the child is replaced.
#
# The child lives on and serves scans one after another (as mail/bounded.py's parse workers
# do), because a fresh interpreter importing Pillow and pdfium for every scan cost ~100 ms
# of CPU, four times the re-encoding itself. It is replaced when it dies, breaks a limit,
# after SCANS_PER_CHILD scans, and it leaves by itself after IDLE_EXIT_S without work so an
# idle worker does not hold it. Why not multiprocessing (a pool with max_tasks_per_child):
# a Celery prefork child is daemonic and may not have children, a hung scan cannot be
# killed alone, and its answers are pickles; here the answer is a JSON line and the pages'
# bytes (no pickle: the child has just handled hostile input).
ISOLATED_MEMORY_BYTES = 1024 * 1024 * 1024
ISOLATED_TIMEOUT_S = 60.0  # wall time of one scan; the child is killed past it
ISOLATED_CPU_S = 30  # CPU seconds of one scan (RLIMIT_CPU, raised scan by scan)
SCANS_PER_CHILD = 200  # then a fresh child: whatever a scan left behind does not pile up
IDLE_EXIT_S = 60.0
_MAX_ANSWER = 64 * 1024
_MAX_PAGE = MAX_PIXELS * 3  # no JPEG of a page we allow is larger than its raw pixels
_CHILD = ("import sys; from gateway.replies.scan_safety import serve_fd; "
          "serve_fd(*map(int, sys.argv[1:4]), float(sys.argv[4]))")  # run by gateway.child


def serve_fd(fd: int, memory_bytes: int, cpu_seconds: int, idle_s: float) -> None:
    """The child: limits first, then the readers imported once, then scans until the parent
    closes the socket or none comes for `idle_s`."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import pypdfium2  # noqa: F401 - paid once here, not at the first PDF
    from PIL import ImageFile
    # A truncated image is damaged, not a scan: whatever this interpreter imports, Pillow
    # does not fill in what is missing (weasyprint, for one, turns this on for its process).
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    conn = Connection(fd)
    while True:
        try:
            if not conn.poll(idle_s):
                return  # the parent sees it gone and starts another when it needs one
            request = json.loads(conn.recv_bytes(_MAX_ANSWER))
            data = conn.recv_bytes()
            # "I have it": a child that dies before this never saw the scan (it had left,
            # or was killed while idle), and the parent gives the scan to a fresh one.
            conn.send_bytes(b"+")
        except (EOFError, OSError):
            return
        # RLIMIT_CPU counts the child's whole life: each scan gets its own budget on top
        # of what was used so far (SIGXCPU ends the child past it).
        used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        soft = int(used) + 1 + cpu_seconds
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        faults.point("replies.scan_child")  # the chaos of a reader killed mid-scan
        pages: list[ScanPage] = []
        fatal = False
        try:
            pages = reencode_scan(data, max_pages=int(request["max_pages"]))
            answer = {"ok": True, "sizes": [len(p.data) for p in pages]}
        except UnsafeScan as exc:
            answer = {"ok": False, "reason": exc.reason}
        except MemoryError:
            answer = {"ok": False, "reason": "the scan needs more memory than a page may take"}
            fatal = True
        except Exception as exc:  # noqa: BLE001 - a reader's own failure on hostile bytes
            answer = {"ok": False, "reason": f"the scan could not be read ({type(exc).__name__})"}
            fatal = True
        del data
        answer["last"] = fatal
        try:
            conn.send_bytes(json.dumps(answer).encode())
            for page in pages:
                conn.send_bytes(page.data)
        except (OSError, ValueError):
            return
        if fatal:  # after a MemoryError or a reader's surprise, no more scans from this one
            return


class _Died(Exception):
    def __init__(self, code: int | None, *, before_reading: bool):
        super().__init__(code)
        self.code, self.before_reading = code, before_reading


class _TooLong(Exception):
    pass


class ScanReader:
    """Limited children that re-encode scans. Thread-safe (the dashboard's threads store
    uploads); a child that hangs, dies or breaks a limit is killed and replaced, and only
    its scan is refused."""

    def __init__(self, *, memory_bytes: int = ISOLATED_MEMORY_BYTES,
                 cpu_seconds: int = ISOLATED_CPU_S, scans_per_child: int = SCANS_PER_CHILD,
                 idle_s: float = IDLE_EXIT_S, children: int = 2):
        self.memory_bytes, self.cpu_seconds, self.idle_s = memory_bytes, cpu_seconds, idle_s
        self._slots = threading.BoundedSemaphore(children)
        self._pool = ChildPool(_CHILD, scans_per_child)
        self._owner = os.getpid()

    def reencode(self, data: bytes, *, max_pages: int = DEFAULT_MAX_PAGES,
                 timeout_s: float = ISOLATED_TIMEOUT_S) -> list[ScanPage]:
        """reencode_scan's answer, or UnsafeScan when the child runs out of memory, CPU or
        `timeout_s` of wall time, or dies."""
        if not data:
            raise UnsafeScan("the file is empty")
        with self._slots:
            for _ in range(2):
                child = self._pool.take(self.memory_bytes, self.cpu_seconds, self.idle_s)
                try:
                    answer, pages = self._ask(child, data, max_pages, timeout_s)
                except _TooLong:
                    self._pool.discard(child)
                    raise UnsafeScan(f"the scan took longer than {timeout_s:.0f} s to read") \
                        from None
                except _Died as died:
                    self._pool.discard(child)
                    if died.before_reading:
                        continue  # it had left, or was killed, before it saw this scan
                    if died.code == -signal.SIGXCPU:
                        raise UnsafeScan(f"the scan took more than {self.cpu_seconds} s of "
                                         "CPU to read") from None
                    raise UnsafeScan("reading the scan failed within the limits "
                                     f"(exit {died.code})") from None
                self._pool.give_back(child, last=answer.get("last") is not False)
                if not answer.get("ok"):
                    raise UnsafeScan(str(answer.get("reason", "refused")))
                return pages
        raise UnsafeScan("the scan reader would not start")  # pragma: no cover

    def _ask(self, child: Child, data: bytes, max_pages: int,
             timeout_s: float) -> tuple[dict, list[ScanPage]]:
        deadline = time.monotonic() + timeout_s

        def receive(limit: int) -> bytes:
            if not child.conn.poll(max(0.0, deadline - time.monotonic())):
                raise _TooLong
            return child.conn.recv_bytes(limit)

        reading = False
        try:
            child.conn.send_bytes(json.dumps({"max_pages": max_pages}).encode())
            child.conn.send_bytes(data)
            if receive(1) != b"+":
                raise ValueError("no acknowledgement")
            reading = True
            answer = json.loads(receive(_MAX_ANSWER))
            if not isinstance(answer, dict):
                raise ValueError("not an object")
            pages = []
            for n, size in enumerate(answer.get("sizes", []) if answer.get("ok") else [],
                                     start=1):
                page = receive(_MAX_PAGE)
                if len(page) != size or not page.startswith(b"\xff\xd8\xff"):
                    raise ValueError("not a JPEG")
                pages.append(ScanPage(page, "image/jpeg", f"page-{n}.jpg"))
        except (EOFError, OSError):
            raise _Died(child.exit_code(), before_reading=not reading) from None
        except (ValueError, TypeError):  # a garbled answer: the child is not to be trusted again
            self._pool.discard(child)
            raise UnsafeScan("the scan reader returned something that is not a JPEG") from None
        return answer, pages

    def pids(self) -> set[int]:
        """The children alive now (for tests and the benchmark)."""
        return self._pool.pids()

    def close(self) -> None:
        if os.getpid() != self._owner:
            return  # a forked process's inherited copy: the children are its parent's
        self._pool.close()


_readers: dict[int, ScanReader] = {}
_readers_lock = threading.Lock()


def reader(memory_bytes: int = ISOLATED_MEMORY_BYTES) -> ScanReader:
    """This process's reader for that memory limit, started on first use."""
    with _readers_lock:
        found = _readers.get(memory_bytes)
        if found is None:
            found = _readers[memory_bytes] = ScanReader(memory_bytes=memory_bytes)
            atexit.register(found.close)
        return found


def _forget_after_fork() -> None:
    # A forked process (a Celery pool child) must not talk to its parent's children over
    # the inherited sockets: it starts its own when it needs one.
    global _readers_lock
    _readers.clear()
    _readers_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def reencode_scan_isolated(data: bytes, *, max_pages: int = DEFAULT_MAX_PAGES,
                           memory_bytes: int = ISOLATED_MEMORY_BYTES,
                           timeout_s: float = ISOLATED_TIMEOUT_S) -> list[ScanPage]:
    """reencode_scan in a limited child process: the same answer, or UnsafeScan when the
    child runs out of memory or time or dies."""
    return reader(memory_bytes).reencode(data, max_pages=max_pages, timeout_s=timeout_s)
