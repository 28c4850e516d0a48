"""Serving the live page on 127.0.0.1: the store watcher, the Bokeh server, and the link to Dask.

- :class:`StoreWatcher` reads the store in a thread of its own whenever the
  file changes (its size, time or inode; a resume swaps in a new file), and
  at least every :data:`REREAD_SECONDS`, and keeps the newest
  :class:`~activemat.analysis.view.frames.Frame`. Every browser session
  shares it, so ten open tabs read the store once.
- :class:`ViewServer` is a Bokeh server bound to 127.0.0.1 only (never
  every interface: the page shows what a campaign computes to whoever
  reaches the port; from another machine, forward the port with ``ssh -L``).
  It runs in the foreground (``activemat view``) or in a thread beside the
  campaign driver (``activemat run --view``).
- :class:`DaskLink` asks the driver's Dask client, when there is one in the
  process, for its dashboard's address and for the worker each running
  calculation was sent to.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from activemat.analysis.view.frames import Frame, read_frame, waiting_frame
from activemat.errors import InputError

#: The only address the page is served on.
HOST = "127.0.0.1"
#: Default port (Bokeh's own default).
DEFAULT_PORT = 5006
#: Seconds between checks of the store file.
INTERVAL = 1.0
#: A store is read again after this many seconds even if its file looks unchanged (a driver that died
#: leaves the file as it was; whether a driver holds it is part of what the page shows).
REREAD_SECONDS = 15.0
#: The Dask key of a calculation, as the campaign's scheduler names it: gap-<preset>-c<candidate>-a<attempt>-<ns>.
_TASK_KEY = re.compile(r"^gap-(?P<preset>.+)-c(?P<candidate>\d+)-a(?P<attempt>\d+)-\d+$")


def _listen(port: int) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:port (0: any free port); InputError naming the fix if it is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restarted view gets its port back at once
        sock.bind((HOST, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on {HOST} is in use (another view or program); choose another "
                             "with --port, or --port 0 for any free one") from None
        raise
    return sock


def _with_workers(running: dict, assigned: dict) -> dict:
    """The running table's columns with each calculation's worker from ``assigned``."""
    keys = zip(running["preset"], running["candidate"], running["attempt"])
    return {**running, "worker": [assigned.get((p, int(c), int(a)), "") for p, c, a in keys]}


def _signature(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


class DaskLink:
    """The driver's Dask client, found in this process (``distributed.default_client``), if there is one.

    Everything it reports is best effort: no client, a closing one, or a scheduler that does not answer
    gives no link and no workers, never an error.
    """

    def _client(self):
        if "distributed" not in sys.modules:
            return None
        from distributed import default_client

        try:
            client = default_client()
        except ValueError:
            return None
        return client if client.status == "running" else None

    def dashboard(self) -> str | None:
        """URL of the Dask dashboard, or None."""
        client = self._client()
        try:
            return client.dashboard_link if client is not None and client.scheduler_info().get(
                "services", {}).get("dashboard") else None
        except Exception:  # the cluster is shutting down: no link
            return None

    def assigned(self) -> dict:
        """(preset, candidate, attempt) -> name of the worker each running calculation was sent to."""
        client = self._client()
        if client is None:
            return {}
        try:
            workers = client.scheduler_info()["workers"]
            processing = client.processing()
        except Exception:  # the cluster is shutting down: no workers to show
            return {}
        out = {}
        for address, keys in processing.items():
            name = str(workers.get(address, {}).get("name", address))
            for key in keys:
                m = _TASK_KEY.match(str(key))
                if m:
                    out[(m["preset"], int(m["candidate"]), int(m["attempt"]))] = name
        return out


class StoreWatcher:
    """Reads a store whenever it changes, in a thread of its own, and keeps the newest frame.

    Parameters
    ----------
    path : the store (it need not exist yet).
    interval : seconds between checks of the file.
    link : a :class:`DaskLink` for the running table's workers (None: no workers shown).
    budget : the run's budget when it differs from the stored campaign file's (``run --budget``).
    """

    def __init__(self, path: str | Path, *, interval: float = INTERVAL, link: DaskLink | None = None,
                 budget: int | None = None):
        self.path, self.interval, self.link, self.budget = Path(path), interval, link, budget
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._version = 0
        self._seen: tuple | None = None
        self._assigned: dict = {}
        self._read_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def latest(self) -> tuple[Frame | None, int]:
        """The newest frame and its version (a number that grows with every new frame)."""
        with self._lock:
            return self._frame, self._version

    def poll(self) -> bool:
        """Read the store if it changed (or is due); True if a new frame was made."""
        sig = _signature(self.path)
        due = time.monotonic() - self._read_at >= REREAD_SECONDS
        old = self._frame
        running = old is not None and old.error is None and old.header["running"] > 0
        assigned = self.link.assigned() if self.link is not None and (running or sig != self._seen) else {}
        if sig == self._seen and not due:
            if not running or assigned == self._assigned:
                return False
            # only the workers of running calculations changed: no need to read the store again
            frame = replace(old, sources={**old.sources, "running": _with_workers(old.sources["running"], assigned)})
        elif sig is None:
            frame = waiting_frame(self.path)
        else:
            frame = read_frame(self.path, assigned=assigned, budget=self.budget)
            if frame.error is not None and old is not None and old.error is None:
                # A store being swapped in by a resume, or damaged: keep showing the last good reading.
                frame = replace(old, note=f"the last reading failed ({frame.error}); showing the one before")
        self._seen, self._read_at, self._assigned = sig, time.monotonic(), assigned
        with self._lock:
            self._frame = frame
            self._version += 1
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # never let the page die with the reader: show why, try again
                with self._lock:
                    self._frame = Frame(str(self.path), time.time(), error=f"{type(exc).__name__}: {exc}")
                    self._version += 1
            self._stop.wait(self.interval)

    def start(self) -> StoreWatcher:
        """Read once now, then keep reading in a daemon thread."""
        self.poll()
        self._thread = threading.Thread(target=self._run, name="activemat-view-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


class ViewServer:
    """The live page of one store, served by Bokeh on 127.0.0.1.

    Parameters
    ----------
    store : the store's path (it need not exist yet: the page waits for it).
    port : TCP port; 0 picks a free one (see :attr:`port` once started).
    interval : seconds between checks of the store file.
    dashboard : the Dask dashboard's URL to link, or None to ask :class:`DaskLink` (beside a driver).
    budget : the run's budget (``activemat run --view``), when it may differ from the stored campaign file's.

    Attributes
    ----------
    port : the port it listens on, once :meth:`start` or :meth:`start_in_thread` has bound it.
    url : ``http://127.0.0.1:<port>/``.
    """

    def __init__(self, store: str | Path, *, port: int = DEFAULT_PORT, interval: float = INTERVAL,
                 dashboard: str | None = None, budget: int | None = None):
        self.store, self.port, self.interval = Path(store), port, interval
        self.link = DaskLink()
        self._dashboard = dashboard
        self.watcher = StoreWatcher(self.store, interval=interval, link=self.link, budget=budget)
        self._server = None
        self._loop = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def dashboard(self) -> str | None:
        return self._dashboard or self.link.dashboard()

    def _make_document(self, doc) -> None:
        from activemat.analysis.view.page import Page

        Page(doc, self.watcher, dashboard=self.dashboard)

    def _build(self) -> None:
        """Bind the socket and create the Bokeh server on the current thread's IO loop."""
        from bokeh.application import Application
        from bokeh.application.handlers.function import FunctionHandler
        from bokeh.server.server import BaseServer
        from bokeh.server.tornado import BokehTornado
        from tornado.httpserver import HTTPServer
        from tornado.ioloop import IOLoop

        sock = _listen(self.port)
        self.port = sock.getsockname()[1]
        origins = [f"{HOST}:{self.port}", f"localhost:{self.port}"]  # the browser's Host, here or via ssh -L
        app = BokehTornado({"/": Application(FunctionHandler(self._make_document))},
                           extra_websocket_origins=origins, absolute_url=self.url)
        http = HTTPServer(app)
        http.add_sockets([sock])
        self._server = BaseServer(IOLoop.current(), app, http)
        self._server.start()

    def start(self) -> ViewServer:
        """Start reading the store and bind the port (on the calling thread's IO loop)."""
        self.watcher.start()
        self._build()
        return self

    def run_forever(self) -> None:
        """Serve in the foreground until SIGINT (Ctrl-C) or SIGTERM; then close and return."""
        from tornado.ioloop import IOLoop

        loop = IOLoop.current()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.asyncio_loop.add_signal_handler(sig, loop.stop)
        try:
            loop.start()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.asyncio_loop.remove_signal_handler(sig)
            self.close()

    def start_in_thread(self) -> ViewServer:
        """Serve from a daemon thread with its own event loop (beside a campaign driver); return once bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                from tornado.ioloop import IOLoop

                try:
                    self.start()
                    self._loop = IOLoop.current()
                except BaseException as exc:
                    failure.append(exc)
                    return
                finally:
                    ready.set()
                self._loop.start()
            finally:
                loop.close()

        self._thread = threading.Thread(target=serve, name="activemat-view", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self.watcher.stop()
            raise failure[0]
        return self

    def close(self) -> None:
        """Stop serving and reading."""
        if self._thread is not None and self._loop is not None:
            loop, server = self._loop, self._server

            def shut() -> None:
                server.stop()
                loop.stop()

            loop.add_callback(shut)
            self._thread.join(timeout=10)
            self._thread = None
        elif self._server is not None:
            self._server.stop()
        self._server = None
        self.watcher.stop()


@contextmanager
def beside(store: str | Path, *, port: int = DEFAULT_PORT, budget: int | None = None, announce=print):
    """``activemat run --view``: the page of ``store`` served from a thread while the block runs (a driver).

    The port is bound on entry (InputError if it is taken, before anything is computed) and
    ``announce`` is called with the page's address line; the server stops on exit.
    """
    server = ViewServer(store, port=port, budget=budget).start_in_thread()
    try:
        announce(view_line(server))
        yield server
    finally:
        server.close()


def serve(store: str | Path, *, port: int = DEFAULT_PORT, interval: float = INTERVAL,
          dashboard: str | None = None, announce=print) -> None:
    """``activemat view``: serve a store's live page on 127.0.0.1 until interrupted.

    ``announce`` is called once with the page's address line (and how to reach it from another machine).
    """
    server = ViewServer(store, port=port, interval=interval, dashboard=dashboard).start()
    announce(view_line(server))
    server.run_forever()


def view_line(server: ViewServer) -> str:
    """The line that tells where the page is, e.g. for the terminal at start."""
    return (f"view: {server.url} (serving {server.store} on {HOST} only; from another machine: "
            f"ssh -L {server.port}:{HOST}:{server.port} <this host>, then open http://localhost:{server.port}/)")
